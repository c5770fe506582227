//! Background tasks: recover, replay-missing and bulk replay over a time
//! range, and purging an application's payloads.
//!
//! The API records a task as `running` and answers at once. A runner on
//! every node then works through the range in steps: each step is one
//! transaction that schedules up to `STEP` deliveries and moves the task's
//! cursor past them, so a crash loses at most a step in progress (rolled
//! back, then redone) and a range of any size never holds one long
//! transaction. On PostgreSQL the step locks its task row, so nodes share
//! the tasks without stepping the same one twice.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::ids::IdKind;
use crate::store::model::{now, BackgroundTask, DeliveryStatus, ResendFilter, TaskKind, TaskStatus};
use crate::store::{MessageRange, Store, StoreError, Tx};

/// Messages one step looks at, at most.
const STEP: usize = 500;

/// How often an idle runner looks for tasks that other nodes created.
const POLL: Duration = Duration::from_secs(1);

/// Ended tasks are kept this long for `background-task` reads (the
/// retention sweeper deletes them after).
pub const KEEP_ENDED: chrono::Duration = chrono::Duration::days(7);

/// Runs one step of the running task that waited longest; the task after
/// the step, or `None` when no task is running.
pub fn step(tx: &mut dyn Tx) -> Result<Option<BackgroundTask>, StoreError> {
    step_of(tx, STEP)
}

fn step_of(tx: &mut dyn Tx, size: usize) -> Result<Option<BackgroundTask>, StoreError> {
    let Some(mut task) = tx.next_running_task()? else { return Ok(None) };
    task.updated_at = now();
    let seen = match task.kind {
        TaskKind::EndpointRecover | TaskKind::EndpointReplay | TaskKind::EndpointBulkReplay => {
            schedule_step(tx, &mut task, size)?
        }
        TaskKind::ApplicationPurgeContent => purge_step(tx, &mut task, size)?,
    };
    if task.status == TaskStatus::Running && seen.len() < size {
        task.status = TaskStatus::Finished;
    }
    if let Some(last) = seen.last() {
        task.cursor = Some(last.clone());
    }
    tx.update_task(&task)?;
    Ok(Some(task))
}

/// Recover or replay: schedules the step's deliveries; the ids looked at.
fn schedule_step(tx: &mut dyn Tx, task: &mut BackgroundTask, size: usize) -> Result<Vec<String>, StoreError> {
    let Some(ep) = tx.endpoint(&task.app_id, &task.endpoint_id)? else {
        task.status = TaskStatus::Failed;
        task.error = Some("the endpoint was deleted".into());
        return Ok(Vec::new());
    };
    let range = MessageRange { since: task.since, until: task.until, after: task.cursor.as_deref() };
    // One index range per status, merged: each is a short walk from the
    // cursor however many deliveries the endpoint has.
    let resend = |tx: &mut dyn Tx, filter: &ResendFilter| -> Result<Vec<String>, StoreError> {
        let statuses = filter.status.map_or(DeliveryStatus::ALL.to_vec(), |s| vec![s]);
        tx.deliveries_to_resend(&ep.id, &statuses, &range, filter, size)
    };
    let (seen, due): (Vec<String>, Vec<String>) = match task.kind {
        TaskKind::EndpointRecover => {
            let ids = resend(tx, &ResendFilter::failed())?;
            (ids.clone(), ids)
        }
        TaskKind::EndpointBulkReplay => {
            let ids = resend(tx, &task.filter)?;
            (ids.clone(), ids)
        }
        _ => {
            let types = ep.filter_types.as_deref();
            let missing = tx.messages_missing_delivery(&task.app_id, &ep.id, types, &range, size)?;
            let due = missing
                .iter()
                .filter(|m| ep.wants(&m.event_type, m.channels.as_deref()) && m.payload.is_some())
                .map(|m| m.id.clone())
                .collect();
            (missing.into_iter().map(|m| m.id).collect(), due)
        }
    };
    // Recover and replay start a fresh round of retries; a bulk replay
    // resends each message once, like a manual resend.
    let manual = task.kind == TaskKind::EndpointBulkReplay;
    for msg_id in &due {
        tx.schedule_delivery(&task.app_id, msg_id, &ep.id, None, manual)?;
    }
    task.scheduled += due.len() as u64;
    Ok(seen)
}

/// Purge: deletes the step's payloads; the ids purged.
fn purge_step(tx: &mut dyn Tx, task: &mut BackgroundTask, size: usize) -> Result<Vec<String>, StoreError> {
    let after = task.cursor.clone().unwrap_or_default();
    let before = IdKind::Message.floor_at(task.until.timestamp_millis());
    let ids = tx.message_ids_with_payload(&task.app_id, &after, &before, size)?;
    for id in &ids {
        tx.expunge_message_payload(&task.app_id, id)?;
    }
    task.scheduled += ids.len() as u64;
    Ok(ids)
}

/// Steps tasks until `shutdown` turns true: at once when `wake` rings (a
/// task was created here), otherwise every `POLL`.
pub async fn run_forever(store: Store, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    loop {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match store.write(step).await {
                Ok(Some(_)) => tokio::task::yield_now().await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "background task step failed; trying the others first");
                    if let Err(e) = store.write(|tx| tx.defer_next_running_task(now())).await {
                        tracing::warn!(error = %e, "deferring a failed background task failed");
                    }
                    break;
                }
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{app, endpoint, message, stores};

    fn replay(id: &str, endpoint_id: &str) -> BackgroundTask {
        let now = now();
        BackgroundTask {
            id: id.into(),
            kind: TaskKind::EndpointReplay,
            status: TaskStatus::Running,
            app_id: "app_t".into(),
            endpoint_id: endpoint_id.into(),
            since: now - chrono::Duration::minutes(1),
            until: now + chrono::Duration::minutes(1),
            cursor: None,
            scheduled: 0,
            error: None,
            filter: ResendFilter::default(),
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn a_replay_walks_its_range_in_steps_past_messages_it_skips() {
        let at = now().timestamp_millis();
        let ids: Vec<String> = (0..5).map(|n| IdKind::Message.generate_at(at + n)).collect();
        for s in stores().await {
            let inserted = ids.clone();
            s.store
                .write(move |tx| {
                    tx.insert_application(&app("app_t"))?;
                    let mut ep = endpoint("ep_t", "app_t", None);
                    ep.channels = Some(vec!["main".into()]);
                    tx.insert_endpoint(&ep)?;
                    // The third message is on a channel the endpoint does not
                    // want: a step looks at it, schedules nothing, moves on.
                    for (n, id) in inserted.iter().enumerate() {
                        let mut m = message(id, "app_t");
                        m.channels = Some(vec![if n == 2 { "other" } else { "main" }.into()]);
                        tx.insert_message(&m)?;
                    }
                    tx.insert_task(&replay("qtask_1", "ep_t"))
                })
                .await
                .unwrap();
            let mut steps = Vec::new();
            while let Some(t) = s.store.write(|tx| step_of(tx, 2)).await.unwrap() {
                steps.push((t.scheduled, t.cursor.clone(), t.status));
                assert!(steps.len() <= 3, "{}: the task never ends: {steps:?}", s.name);
            }
            let running = TaskStatus::Running;
            let expected = [
                (2, Some(ids[1].clone()), running),
                (3, Some(ids[3].clone()), running),
                (4, Some(ids[4].clone()), TaskStatus::Finished),
            ];
            assert_eq!(steps, expected, "{}", s.name);
            let unwanted = ids[2].clone();
            let owed = s.store.read(move |tx| tx.deliveries_of_message("app_t", &unwanted)).await.unwrap();
            assert!(owed.is_empty(), "{}: the unwanted message was scheduled", s.name);
            let task = s.store.read(|tx| tx.task("qtask_1")).await.unwrap().unwrap();
            assert_eq!((task.status, task.scheduled), (TaskStatus::Finished, 4), "{}", s.name);
        }
    }

    #[tokio::test]
    async fn a_task_whose_endpoint_is_gone_fails_and_says_why() {
        for s in stores().await {
            s.store
                .write(|tx| {
                    tx.insert_application(&app("app_t"))?;
                    tx.insert_task(&replay("qtask_2", "ep_gone"))
                })
                .await
                .unwrap();
            let task = s.store.write(step).await.unwrap().unwrap();
            assert_eq!(task.status, TaskStatus::Failed, "{}", s.name);
            assert_eq!(task.error.as_deref(), Some("the endpoint was deleted"), "{}", s.name);
            assert!(s.store.write(step).await.unwrap().is_none(), "{}: an ended task is not stepped", s.name);
            let ended = s.store.read(|tx| tx.list_tasks(&Default::default(), &Default::default())).await.unwrap();
            assert_eq!(ended.data.len(), 1, "{}", s.name);
            let purged = s.store.write(|tx| tx.purge_ended_tasks(now() + chrono::Duration::seconds(1))).await.unwrap();
            assert_eq!(purged, 1, "{}", s.name);
        }
    }
}
