//! Cursor pagination, shaped like Svix's `{data, iterator, prevIterator, done}`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// Where a page starts: after `iterator`, or before it (Svix's `-` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    After(String),
    Before(String),
}

impl Cursor {
    /// Svix iterators: a key, or `-key` to page backwards.
    pub fn parse(iterator: &str) -> Option<Cursor> {
        match iterator.strip_prefix('-') {
            Some("") => None,
            Some(key) => Some(Cursor::Before(key.to_string())),
            None if iterator.is_empty() => None,
            None => Some(Cursor::After(iterator.to_string())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub order: Order,
}

/// The first page of 50, newest first (the API's default).
impl Default for ListQuery {
    fn default() -> ListQuery {
        ListQuery { limit: 50, cursor: None, order: Order::Descending }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in travel order.
    pub fn from_rows(mut rows: Vec<T>, query: &ListQuery, key: impl Fn(&T) -> String) -> Page<T> {
        let has_more = rows.len() > query.limit;
        rows.truncate(query.limit);
        let backwards = matches!(query.cursor, Some(Cursor::Before(_)));
        if backwards {
            rows.reverse();
        }
        Page {
            iterator: rows.last().map(&key),
            prev_iterator: rows.first().map(|r| format!("-{}", key(r))),
            done: !has_more,
            data: rows,
        }
    }

    pub fn empty() -> Page<T> {
        Page { data: Vec::new(), iterator: None, prev_iterator: None, done: true }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            iterator: self.iterator,
            prev_iterator: self.prev_iterator,
            done: self.done,
        }
    }
}
