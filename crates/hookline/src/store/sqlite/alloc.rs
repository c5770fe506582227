//! SQLite's memory comes from mimalloc, the allocator of the rest of the
//! process: under glibc's malloc the writer thread spent a sixth of its
//! time freeing and consolidating page-sized chunks (docs/performance.md).
//! SQLite's own accounting of that memory is off: it took a process-wide
//! mutex around every allocation, and nothing here reads its figures.

use std::os::raw::{c_int, c_void};
use std::sync::OnceLock;

use libmimalloc_sys::{mi_free, mi_good_size, mi_malloc, mi_realloc, mi_usable_size};
use rusqlite::ffi;

unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
    mi_malloc(size.max(0) as usize)
}

unsafe extern "C" fn free(ptr: *mut c_void) {
    mi_free(ptr)
}

unsafe extern "C" fn realloc(ptr: *mut c_void, size: c_int) -> *mut c_void {
    mi_realloc(ptr, size.max(0) as usize)
}

unsafe extern "C" fn size(ptr: *mut c_void) -> c_int {
    clamp(mi_usable_size(ptr))
}

unsafe extern "C" fn roundup(size: c_int) -> c_int {
    clamp(mi_good_size(size.max(0) as usize))
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

fn clamp(size: usize) -> c_int {
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

/// Hands SQLite its allocator, once, before the process's first connection
/// (SQLite takes it only before it initializes). Returns whether SQLite
/// uses it: a connection opened elsewhere first leaves glibc's malloc in
/// place, which is slower but just as correct.
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(malloc),
            xFree: Some(free),
            xRealloc: Some(realloc),
            xSize: Some(size),
            xRoundup: Some(roundup),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SQLite copies the methods before the call returns.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const ffi::sqlite3_mem_methods) };
        if rc == ffi::SQLITE_OK {
            // Accepted exactly when the allocator was, before initialization.
            unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        } else {
            tracing::debug!(rc, "SQLite was initialized before its allocator was set; it keeps the system malloc");
        }
        rc == ffi::SQLITE_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_allocates_from_mimalloc() {
        // Every connection of the crate is opened after `install`, so
        // whichever test came first, SQLite took it.
        assert!(install(), "SQLite was initialized before its allocator was set");
        // A block SQLite hands out is one mimalloc knows the size of.
        let block = unsafe { ffi::sqlite3_malloc(1000) };
        assert!(!block.is_null());
        let usable = unsafe { mi_usable_size(block) };
        assert!(usable >= 1000, "{usable}");
        assert_eq!(unsafe { ffi::sqlite3_msize(block) }, usable as u64);
        // Not counted: the accounting (and its mutex) is off.
        assert_eq!(unsafe { ffi::sqlite3_memory_used() }, 0);
        unsafe { ffi::sqlite3_free(block) };
    }
}
