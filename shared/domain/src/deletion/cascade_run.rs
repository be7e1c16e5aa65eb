//! The cascade step of the delete routine: every table of the plan at once, each page saved
//! before its keys are deleted, so that a crash anywhere resumes exactly.

use super::{Cascaded, Deletion};
use crate::cascade::{CascadeTable, Lookup, CASCADE_PLAN};
use crate::job::{DeletionJob, TableProgress};
use crate::ports::*;
use std::time::Duration;
use tokio::time::Instant;

impl Deletion {
    /// Step 5 (or the late pass): erase every table of the plan, all at once, into
    /// `job.progress` (or `job.late_progress`).
    ///
    /// Each table runs its own loop, and the tables share the job, which is saved before the
    /// keys of any page of any of them are deleted (one save at a time), so a crash anywhere
    /// resumes exactly: a page's keys are saved as `pending` before they are deleted and
    /// counted once they are gone.
    /// While a page is deleted, the next one is read. DynamoDB's "slow down" (throttling,
    /// capacity exceeded) slows a table down; it never fails the erasure.
    pub(super) async fn cascade(
        &self, job: &mut DeletionJob, late: bool, deadline: Instant,
    ) -> Result<Cascaded, DependencyError> {
        let shared = tokio::sync::Mutex::new(job.clone());
        let lost = std::sync::atomic::AtomicBool::new(false);
        let ends = futures::future::try_join_all(
            CASCADE_PLAN
                .iter()
                .map(|table| self.cascade_table(&shared, table, late, deadline, &lost)),
        )
        .await;
        *job = shared.into_inner();
        let ends = ends?;
        Ok(
            if lost.load(std::sync::atomic::Ordering::SeqCst) || ends.contains(&Cascaded::Lost) {
                Cascaded::Lost
            } else if ends.contains(&Cascaded::OutOfTime) {
                Cascaded::OutOfTime
            } else {
                Cascaded::Done
            },
        )
    }

    /// One table of [`Self::cascade`].
    ///
    /// A table found through its own partition key is read consistently: one pass finds every
    /// item. A table found through an index is eventually consistent: a row written just
    /// before can be missing, a deleted one can still show. So the keys of every page read
    /// through an index are checked against the table first (an item the index still shows
    /// after its deletion is neither deleted nor counted), and once the first pass is over the
    /// index is queried again from the start until a query finds nothing.
    async fn cascade_table(
        &self, shared: &tokio::sync::Mutex<DeletionJob>, table: &CascadeTable, late: bool, deadline: Instant,
        lost: &std::sync::atomic::AtomicBool,
    ) -> Result<Cascaded, DependencyError> {
        use std::sync::atomic::Ordering;
        let by_index = matches!(table.lookup, Lookup::Index { .. });
        let (user_id, mut at) = {
            let mut job = shared.lock().await;
            (job.user_id.clone(), progress_of(&mut job, table, late).clone())
        };
        let mut only_stale = false;
        let mut slow_down = Duration::ZERO;
        loop {
            if lost.load(Ordering::SeqCst) {
                return Ok(Cascaded::Lost);
            }
            if at.done {
                return Ok(Cascaded::Done);
            }
            if !slow_down.is_zero() {
                if Instant::now() + slow_down >= deadline {
                    return Ok(Cascaded::OutOfTime);
                }
                tokio::time::sleep(slow_down).await;
            }
            let mut next = at.clone();
            // Deleted and counted below: the keys saved as pending (read before a save).
            let deleting = std::mem::take(&mut next.pending);
            let deleted = deleting.len() as u64;
            // What to read now. A re-query must wait for the pending keys to be gone (it would
            // find them again), so only the first pass reads ahead.
            let read = if at.exhausted || Instant::now() >= deadline {
                None
            } else if at.verifying {
                deleting.is_empty().then_some(None)
            } else {
                Some(at.cursor.clone())
            };
            if at.verifying && read.is_some() && only_stale {
                // Entering the re-query, or the last one found only rows already gone: let the
                // index catch up.
                let pause = self.settings.requery_pause;
                if Instant::now() + pause >= deadline {
                    return Ok(Cascaded::OutOfTime);
                }
                // No pause configured, no sleep: tokio's timer would still round a zero
                // sleep up to its next millisecond tick.
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            let delete = async {
                if deleting.is_empty() {
                    Ok(())
                } else {
                    self.user_data.delete(table, &deleting).await
                }
            };
            let page = async {
                match &read {
                    None => Ok(None),
                    Some(cursor) => {
                        let page = self
                            .user_data
                            .page(table, &user_id, cursor.as_ref(), self.settings.page_size)
                            .await?;
                        let found = page.keys.len();
                        if by_index && found > 0 {
                            // An index can still show items already deleted: only the ones the
                            // table itself holds are deleted and counted.
                            let live = self.user_data.existing(table, &page.keys).await?;
                            Ok(Some((
                                found,
                                KeysPage {
                                    keys: live,
                                    next: page.next,
                                },
                            )))
                        } else {
                            Ok(Some((found, page)))
                        }
                    }
                }
            };
            let (deleted_now, read_now) = futures::join!(delete, page);
            if let Err(err) = deleted_now.as_ref().and(read_now.as_ref().map(drop)) {
                if err.throttled {
                    // Slow down and try again (the pending keys are still saved).
                    slow_down = (slow_down * 2).clamp(Duration::from_millis(50), Duration::from_secs(2));
                    tracing::debug!(table = table.name, "throttled; slowing down");
                    continue;
                }
            }
            deleted_now?;
            let read_now = read_now?;
            slow_down = Duration::ZERO;
            next.deleted += deleted;
            match read_now {
                Some((found, page)) => {
                    if next.verifying {
                        // The last re-query is the one that finds nothing.
                        next.exhausted = found == 0;
                        only_stale = found > 0 && page.keys.is_empty();
                        next.cursor = None;
                    } else {
                        next.exhausted = page.next.is_none();
                        next.cursor = page.next;
                    }
                    next.pending = page.keys;
                }
                None if next.exhausted => {
                    if by_index && !next.verifying {
                        next.verifying = true;
                        next.exhausted = false;
                        only_stale = true;
                    } else {
                        next.done = true;
                    }
                    next.cursor = None;
                }
                None if deleting.is_empty() && Instant::now() >= deadline => {
                    return Ok(Cascaded::OutOfTime);
                }
                None => {}
            }
            // Saved only before keys are deleted: they must be stored as `pending` first. Any
            // other change (a count, a cursor, a table done) is in the shared job, and goes out
            // with the next save of any table or with the step's own save after the cascade; a
            // crash before that redoes only what is harmless to redo (a read, a delete of keys
            // still saved as pending, which are then counted once).
            let must_save = !next.pending.is_empty();
            let mut job = shared.lock().await;
            *progress_of(&mut job, table, late) = next.clone();
            if must_save && !self.save(&mut job).await? {
                lost.store(true, Ordering::SeqCst);
                return Ok(Cascaded::Lost);
            }
            drop(job);
            at = next;
        }
    }
}

fn progress_of<'j>(job: &'j mut DeletionJob, table: &CascadeTable, late: bool) -> &'j mut TableProgress {
    let map = if late {
        &mut job.late_progress
    } else {
        &mut job.progress
    };
    map.entry(table.name.to_owned()).or_default()
}
