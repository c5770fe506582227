//! Message creation in batches: every request validated while a batch was
//! being written joins the next one, and a batch is one transaction of a
//! few multi-row statements whatever its size: check the applications and
//! take the idempotency keys together with their answers (and look up the
//! answers of keys not taken), read event types and fan-out targets,
//! insert the messages with their deliveries, give back the keys of
//! refused drafts. The embedded store commits many closures at once
//! anyway; on PostgreSQL this is what keeps the cost per message to a
//! fraction of a round trip.
//!
//! The answer of each request is the one it would get alone: 202 with its
//! message, the replay of an earlier answer for its `Idempotency-Key`, 409
//! for a taken `eventId`, 422 for a payload its event type's schema refuses.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use super::error::{ApiError, ApiResult};
use super::idempotency::message_reference;
use super::messages::MessageOut;
use crate::keys::{Owner, SecretCipher};
use crate::store::model::{EventType, IdempotentResponse, Message, NewDelivery};
use crate::store::{KeyClaim, Store, StoreError, StoreResult, Tx};

/// Batches written at once (each waits for its own commit).
const WRITERS: usize = 2;
/// Most messages in one batch.
const MAX_BATCH: usize = 128;

/// A validated message creation.
#[derive(Clone)]
pub struct Draft {
    pub message: Message,
    pub with_content: bool,
    /// The request's idempotency key and body digest, if it has a key.
    pub idem: Option<(Vec<u8>, Vec<u8>)>,
}

/// What writing a draft came to.
pub enum Written {
    /// Created: the body of the 202 answer, and whether its event type is
    /// in the catalog (for the metrics' event type label).
    Created(Vec<u8>, bool),
    /// Its idempotency key already has an answer (sealed, as stored).
    Replay(IdempotentResponse),
    /// Another request took its key first; its answer is there once that
    /// request's transaction ends.
    KeyBusy,
}

struct Pending {
    draft: Draft,
    reply: oneshot::Sender<ApiResult<Written>>,
}

#[derive(Clone)]
pub struct MessageWriter {
    queue: mpsc::Sender<Pending>,
}

impl MessageWriter {
    /// Starts the writers on the current runtime.
    pub fn start(store: Store, cipher: SecretCipher) -> MessageWriter {
        let (queue, receiver) = mpsc::channel(8 * MAX_BATCH);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(store.clone(), cipher.clone(), receiver.clone()));
        }
        MessageWriter { queue }
    }

    pub async fn write(&self, draft: Draft) -> ApiResult<Written> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Pending { draft, reply }).await.is_err() {
            return Err(ApiError::internal("the message writers have stopped"));
        }
        answer.await.unwrap_or_else(|_| Err(ApiError::internal("a message writer dropped a request")))
    }
}

async fn write_batches(store: Store, cipher: SecretCipher, receiver: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        // Whatever is waiting (up to MAX_BATCH) goes in this batch; while it
        // is written, the next one fills up.
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            batch
        };
        let (drafts, replies): (Vec<Draft>, Vec<_>) = batch.into_iter().map(|p| (p.draft, p.reply)).unzip();
        write_drafts(&store, &cipher, drafts, replies).await;
    }
}

type Reply = oneshot::Sender<ApiResult<Written>>;

/// Sends each request its outcome, in order.
fn reply_all(replies: Vec<Reply>, outcomes: impl IntoIterator<Item = ApiResult<Written>>) {
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

/// Writes drafts as one batch and answers each request (`replies`, in the
/// drafts' order); returns once they are answered.
async fn write_drafts(store: &Store, cipher: &SecretCipher, drafts: Vec<Draft>, replies: Vec<Reply>) {
    // Each answer is known before the batch is written; rendering and
    // sealing them here keeps that work off the embedded store's single
    // writer thread, whose cycle bounds how fast messages are accepted.
    let Ok(answers) = prepare_answers(&drafts, cipher) else {
        // A draft whose answer cannot be rendered fails alone.
        return reply_all(replies, write_alone(store, cipher, &drafts).await);
    };
    let (drafts, answers) = (Arc::new(drafts), Arc::new(answers));
    let (done, unanswered) = oneshot::channel();
    {
        let (drafts, answers) = (drafts.clone(), answers.clone());
        // The answers leave from where the COMMIT ends (the embedded
        // store's writer thread), not through this task: one wake-up less
        // between the fsync and each client, on two cores where every
        // wake-up waits for one of them.
        let answer = move |written: StoreResult<Vec<ApiResult<Written>>>| {
            let left = match written {
                Ok(outcomes) => {
                    reply_all(replies, outcomes);
                    None
                }
                Err(e) => Some((e, replies)),
            };
            let _ = done.send(left);
        };
        store.write_then(move |tx| write_batch(tx, &drafts, &answers), answer).await;
    }
    match unanswered.await {
        Ok(None) => {}
        Ok(Some((e @ StoreError::Unavailable(_), replies))) => {
            reply_all(replies, drafts.iter().map(|_| Err(ApiError::from(e.clone()))))
        }
        // One draft's failure (its application deleted while the batch
        // waited for it) must not become every request's answer.
        Ok(Some((_, replies))) => reply_all(replies, write_alone(store, cipher, &drafts).await),
        // Dropped unrun with the writer: so were the replies, and each
        // request answers that its writer dropped it.
        Err(_) => {}
    }
}

/// Writes each draft in a transaction of its own; one outcome per draft.
async fn write_alone(store: &Store, cipher: &SecretCipher, drafts: &[Draft]) -> Vec<ApiResult<Written>> {
    let mut outcomes = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let answer = match prepare_answers(std::slice::from_ref(draft), cipher) {
            Ok(answer) => answer,
            Err(e) => {
                outcomes.push(Err(ApiError::from(e)));
                continue;
            }
        };
        let draft = draft.clone();
        let alone = store.write(move |tx| write_batch(tx, std::slice::from_ref(&draft), &answer)).await;
        outcomes.push(
            alone
                .map_err(ApiError::from)
                .and_then(|mut o| o.pop().unwrap_or_else(|| Err(ApiError::internal("a draft was left unwritten")))),
        );
    }
    outcomes
}

/// The answer a draft gets if its message is created: the 202 body, and,
/// when the request has an idempotency key, the key's record: the message
/// named, sealed (see `idempotency::message_reference`).
#[derive(Clone)]
pub struct Answer {
    body: Vec<u8>,
    record: Option<IdempotentResponse>,
}

/// One answer per draft, in order.
pub fn prepare_answers(drafts: &[Draft], cipher: &SecretCipher) -> StoreResult<Vec<Answer>> {
    drafts
        .iter()
        .map(|draft| {
            let body = serde_json::to_vec(&MessageOut::new(draft.message.clone(), draft.with_content))
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let record = draft.idem.as_ref().map(|(key, body_hash)| {
                let named = message_reference(&draft.message.app_id, &draft.message.id, draft.with_content);
                IdempotentResponse {
                    body_hash: body_hash.clone(),
                    status: 202,
                    body: cipher.seal(&named, Owner::IdempotencyRecord(key)),
                }
            });
            Ok(Answer { body, record })
        })
        .collect()
}

/// Writes a batch of drafts in the current transaction, with the answers
/// [`prepare_answers`] made for them; one outcome per draft, in order. May
/// run more than once (see `Store::write`).
pub fn write_batch(tx: &mut dyn Tx, drafts: &[Draft], answers: &[Answer]) -> StoreResult<Vec<ApiResult<Written>>> {
    if answers.len() != drafts.len() {
        return Err(StoreError::Backend("a batch's drafts and answers do not match".into()));
    }
    let now = crate::store::model::now();
    let mut outcomes: Vec<Option<ApiResult<Written>>> = drafts.iter().map(|_| None).collect();

    // Applications deleted since the request was checked, or ids no
    // application has (message creation checks an id here, not before),
    // get no key and no earlier answer replayed either. Every answer is
    // known before anything is written (a message's is itself), so a fresh
    // key is taken together with its answer, in the same step as the
    // check: by the first draft with that key whose application exists.
    // Only the keys not taken are looked up; their answer is replayed, or
    // the key is busy in another transaction.
    let app_ids: Vec<String> = unique(drafts.iter().map(|d| d.message.app_id.clone()));
    let claims: Vec<KeyClaim> = drafts
        .iter()
        .zip(answers)
        .filter_map(|(draft, answer)| match (&draft.idem, &answer.record) {
            (Some((key, _)), Some(record)) => Some(KeyClaim { app_id: &draft.message.app_id, key, answer: record }),
            _ => None,
        })
        .collect();
    let (apps, claimed) = tx.check_applications_and_claim_keys(&app_ids, &claims, now)?;
    for (i, draft) in drafts.iter().enumerate() {
        if !apps.contains(&draft.message.app_id) {
            outcomes[i] = Some(Err(ApiError::not_found()));
        }
    }
    // The drafts that took their key, so that a refused one gives it back.
    let mut owns_key = vec![false; drafts.len()];
    let mut others: Vec<Vec<u8>> = Vec::new();
    let mut firsts: HashSet<&[u8]> = HashSet::new();
    for (i, draft) in live(drafts, &outcomes) {
        let Some((key, _)) = &draft.idem else { continue };
        if answers[i].record.is_none() || !firsts.insert(key.as_slice()) {
            continue;
        }
        if claimed.contains(key) {
            owns_key[i] = true;
        } else {
            others.push(key.clone());
        }
    }
    let answered = if others.is_empty() { HashMap::new() } else { tx.idempotent_responses(&others)? };
    for (i, draft) in drafts.iter().enumerate() {
        let Some((key, _)) = &draft.idem else { continue };
        if outcomes[i].is_some() || owns_key[i] {
            continue;
        }
        outcomes[i] = Some(Ok(match answered.get(key) {
            Some(previous) => Written::Replay(previous.clone()),
            None => Written::KeyBusy,
        }));
    }

    // Event types (payloads their schema refuses) and fan-out targets in
    // one step. The targets are read for every live draft's application,
    // a few more than the drafts the schemas leave.
    let names: Vec<String> = unique(live(drafts, &outcomes).map(|(_, d)| d.message.event_type.clone()));
    let apps: Vec<String> = unique(live(drafts, &outcomes).map(|(_, d)| d.message.app_id.clone()));
    let (types, targets) = tx.event_types_and_fanout_targets(&names, &apps)?;
    let types: HashMap<String, EventType> = types.into_iter().map(|et| (et.name.clone(), et)).collect();
    for (i, draft) in drafts.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        if let (Some(et), Some(payload)) = (types.get(&draft.message.event_type), &draft.message.payload) {
            if let Err(e) = crate::catalog::check_payload(et, payload) {
                outcomes[i] = Some(Err(e));
            }
        }
    }

    // The messages and their fan-out, in one step: the delivery rows are
    // the queue. A taken eventId is a conflict, and its message has no
    // deliveries.
    let writing: Vec<usize> = live(drafts, &outcomes).map(|(i, _)| i).collect();
    let mut fanout = Vec::new();
    for &i in &writing {
        let msg = &drafts[i].message;
        for ep in targets.get(&msg.app_id).into_iter().flatten() {
            if ep.wants(&msg.event_type, msg.channels.as_deref()) {
                fanout.push(NewDelivery {
                    msg_id: msg.id.clone(),
                    endpoint_id: ep.id.clone(),
                    app_id: msg.app_id.clone(),
                    due_at: msg.deliver_at,
                });
            }
        }
    }
    let messages: Vec<&Message> = writing.iter().map(|&i| &drafts[i].message).collect();
    let inserted = tx.insert_messages_with_fanout(&messages, &fanout)?;
    let mut created = Vec::new();
    for (&i, ok) in writing.iter().zip(inserted) {
        if ok {
            created.push(i);
        } else {
            outcomes[i] = Some(Err(ApiError::conflict("a message with this eventId already exists")));
        }
    }

    // Their keys were taken with their answers; keys of refused drafts are
    // given back, as a non-2xx answer is never stored.
    for &i in &created {
        let known = types.contains_key(&drafts[i].message.event_type);
        outcomes[i] = Some(Ok(Written::Created(answers[i].body.clone(), known)));
    }
    let given_back: Vec<Vec<u8>> = (0..drafts.len())
        .filter(|&i| owns_key[i] && matches!(outcomes[i], Some(Err(_))))
        .filter_map(|i| drafts[i].idem.as_ref().map(|(k, _)| k.clone()))
        .collect();
    tx.release_idempotency_keys(&given_back)?;

    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ApiError::internal("a draft was left unwritten"))))
        .collect())
}

/// Drafts with no outcome yet.
fn live<'d>(
    drafts: &'d [Draft],
    outcomes: &'d [Option<ApiResult<Written>>],
) -> impl Iterator<Item = (usize, &'d Draft)> + 'd {
    drafts.iter().enumerate().filter(move |(i, _)| outcomes[*i].is_none())
}

/// The distinct values, in first-seen order.
fn unique<T: Eq + std::hash::Hash + Clone>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MainKey;
    use crate::store::tests::{app, endpoint, message, stores};

    fn draft(id: &str, app_id: &str) -> Draft {
        let mut message = message(id, app_id);
        message.payload_expires_at = crate::store::model::now() + chrono::Duration::days(1);
        Draft { message, with_content: true, idem: None }
    }

    fn keyed(id: &str, key: &str) -> Draft {
        Draft { idem: Some((key.as_bytes().to_vec(), b"digest".to_vec())), ..draft(id, "app_k") }
    }

    /// The drafts written as one batch, and what each request was answered.
    async fn write_drafts(store: &Store, cipher: &SecretCipher, drafts: Vec<Draft>) -> Vec<ApiResult<Written>> {
        let (replies, answers): (Vec<_>, Vec<_>) = drafts.iter().map(|_| oneshot::channel()).unzip();
        super::write_drafts(store, cipher, drafts, replies).await;
        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(answer.await.expect("every request is answered"));
        }
        outcomes
    }

    fn status(outcome: &ApiResult<Written>) -> &'static str {
        match outcome {
            Ok(Written::Created(..)) => "created",
            Ok(Written::Replay(_)) => "replay",
            Ok(Written::KeyBusy) => "busy",
            Err(e) if e.status.as_u16() == 409 => "conflict",
            Err(_) => "error",
        }
    }

    #[tokio::test]
    async fn a_key_is_taken_with_its_answer_and_given_back_when_its_draft_is_refused() {
        for s in stores().await {
            s.store
                .write(|tx| {
                    tx.insert_application(&app("app_k"))?;
                    let mut taken = message("msg_taken", "app_k");
                    taken.event_id = Some("evt-taken".into());
                    tx.insert_message(&taken)
                })
                .await
                .unwrap();
            let cipher = SecretCipher::new(&MainKey::from_bytes([7; 32]));
            let mut refused = keyed("msg_c", "k2");
            refused.message.event_id = Some("evt-taken".into());
            let first = vec![keyed("msg_a", "k1"), keyed("msg_b", "k1"), refused, keyed("msg_d", "k3")];
            let outcomes = write_drafts(&s.store, &cipher, first).await;
            let got: Vec<&str> = outcomes.iter().map(status).collect();
            assert_eq!(got, ["created", "busy", "conflict", "created"], "{}", s.name);
            assert!(matches!(&outcomes[0], Ok(Written::Created(..))));

            // k1 replays msg_a's answer; k2 was given back, so it creates.
            let again = write_drafts(&s.store, &cipher, vec![keyed("msg_e", "k1"), keyed("msg_f", "k2")]).await;
            let got: Vec<&str> = again.iter().map(status).collect();
            assert_eq!(got, ["replay", "created"], "{}", s.name);
            let Ok(Written::Replay(previous)) = &again[0] else { unreachable!() };
            let opened = cipher.open(&previous.body, Owner::IdempotencyRecord(b"k1")).unwrap();
            let named = message_reference("app_k", "msg_a", true);
            assert_eq!((previous.status, &previous.body_hash[..], &opened[..]), (202, &b"digest"[..], &named[..]));

            // A draft refused before the keys are taken (its application
            // is gone) owns nothing: the next draft with its key takes it.
            let orphan = Draft { idem: Some((b"k4".to_vec(), b"digest".to_vec())), ..draft("msg_g", "app_gone") };
            let third = write_drafts(&s.store, &cipher, vec![orphan, keyed("msg_h", "k4"), keyed("msg_i", "k4")]).await;
            let got: Vec<&str> = third.iter().map(status).collect();
            assert_eq!(got, ["error", "created", "busy"], "{}", s.name);
        }
    }

    #[tokio::test]
    async fn a_draft_that_fails_does_not_fail_the_rest_of_its_batch() {
        for s in stores().await {
            s.store
                .write(|tx| {
                    tx.insert_application(&app("app_w"))?;
                    tx.insert_endpoint(&endpoint("ep_w", "app_w", None))
                })
                .await
                .unwrap();
            let cipher = SecretCipher::new(&MainKey::from_bytes([7; 32]));
            // The middle one's application is gone (deleted while the
            // request waited for its batch): the batch finds it missing.
            let drafts = vec![draft("msg_a", "app_w"), draft("msg_b", "app_gone"), draft("msg_c", "app_w")];
            let outcomes = write_drafts(&s.store, &cipher, drafts).await;
            let status: Vec<u16> = outcomes
                .iter()
                .map(|o| match o {
                    Ok(Written::Created(..)) => 202,
                    Ok(_) => 200,
                    Err(e) => e.status.as_u16(),
                })
                .collect();
            assert_eq!(status, [202, 404, 202], "{}", s.name);
            for id in ["msg_a", "msg_c"] {
                let owed = s.store.read(move |tx| tx.deliveries_of_message("app_w", id)).await.unwrap();
                assert_eq!(owed.len(), 1, "{}: {id} fanned out", s.name);
            }
        }
    }
}
