//! The cascade step of the delete routine: every table of the plan at once, each page saved
//! before its keys are deleted, so that a crash anywhere resumes exactly.

use super::{Cascaded, Deletion};
use crate::cascade::{CascadeTable, Lookup, CASCADE_PLAN};
use crate::job::{DeletionJob, TableProgress};
use crate::model::ItemKey;
use crate::ports::*;
use std::time::Duration;
use tokio::time::Instant;

impl Deletion {
    /// Step 5 (or the late pass): erase every table of the plan, all at once, into
    /// `job.progress` (or `job.late_progress`).
    ///
    /// Each table runs its own loop, and the tables share the job, which is saved after every
    /// page of any of them (one save at a time), so a crash anywhere resumes exactly: a page's
    /// keys are saved as `pending` before they are deleted and counted once they are gone.
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
    ///
    /// On the first pass the job's save is off the table's critical path: while a page is
    /// deleted, the next one is read and saved as pending together with the page still being
    /// deleted, so the next delete starts as soon as this one ends. The page whose delete just
    /// ended is counted by that next save: a key leaves `pending`, and is counted, only in a
    /// save made after its delete succeeded.
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
        // How many keys at the front of `at.pending` are deleted already, not yet counted.
        let mut gone = 0;
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
            // Deleted now: the saved keys not deleted yet.
            let deleting = at.pending[gone.min(at.pending.len())..].to_vec();
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
            let cursor = match read {
                // Ahead of at most one page (after a failed delete, `pending` holds two), so
                // `pending` never holds more than two pages.
                Some(cursor)
                    if !at.verifying && !deleting.is_empty() && deleting.len() <= self.settings.page_size =>
                {
                    cursor
                }
                read => {
                    // Delete and read, then save: the re-query, the last page, or a delete that
                    // has to catch up.
                    let page = async {
                        match &read {
                            None => Ok(None),
                            Some(cursor) => self
                                .read_page(table, &user_id, cursor.as_ref(), by_index)
                                .await
                                .map(Some),
                        }
                    };
                    let (deleted_now, read_now) = futures::join!(delete, page);
                    if deleted_now.is_ok() {
                        gone = at.pending.len();
                    }
                    if let Err(err) = deleted_now.as_ref().and(read_now.as_ref().map(drop)) {
                        if err.throttled {
                            // Slow down and try again (the pending keys are still saved).
                            slow_down = slower(slow_down);
                            tracing::debug!(table = table.name, "throttled; slowing down");
                            continue;
                        }
                    }
                    deleted_now?;
                    let read_now = read_now?;
                    slow_down = Duration::ZERO;
                    let mut next = at.clone();
                    next.deleted += gone as u64;
                    next.pending.clear();
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
                    if !self.save_progress(shared, table, late, &next).await? {
                        lost.store(true, Ordering::SeqCst);
                        return Ok(Cascaded::Lost);
                    }
                    at = next;
                    gone = 0;
                    continue;
                }
            };
            // Read the next page and save it while this one is deleted: the save keeps the
            // keys being deleted as pending, and counts those whose delete ended before.
            let read_and_save = async {
                let (_, page) = self.read_page(table, &user_id, cursor.as_ref(), by_index).await?;
                let mut next = at.clone();
                next.deleted += gone as u64;
                next.exhausted = page.next.is_none();
                next.cursor = page.next;
                next.pending = deleting.iter().cloned().chain(page.keys).collect();
                // A failed save ends the run (the job resumes from what is stored); a failed
                // read only slows the table down.
                let saved = self.save_progress(shared, table, late, &next).await;
                Ok::<_, DependencyError>(saved.map(|saved| (saved, next)))
            };
            let (deleted_now, saved_now) = futures::join!(delete, read_and_save);
            match saved_now {
                Ok(saved) => {
                    let (saved, next) = saved?;
                    if !saved {
                        lost.store(true, Ordering::SeqCst);
                        return Ok(Cascaded::Lost);
                    }
                    at = next;
                    gone = if deleted_now.is_ok() { deleting.len() } else { 0 };
                }
                Err(err) => {
                    if deleted_now.is_ok() {
                        gone = at.pending.len();
                    }
                    if !err.throttled {
                        return Err(err);
                    }
                    slow_down = slower(slow_down);
                    tracing::debug!(table = table.name, "throttled; slowing down");
                    continue;
                }
            }
            match deleted_now {
                Ok(()) => slow_down = Duration::ZERO,
                Err(err) if err.throttled => {
                    slow_down = slower(slow_down);
                    tracing::debug!(table = table.name, "throttled; slowing down");
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// One page of `table`'s keys for the user, with the number of keys the query found. Read
    /// through an index, it keeps only the keys the table itself still holds (an index can
    /// still show items already deleted).
    async fn read_page(
        &self, table: &CascadeTable, user_id: &str, cursor: Option<&ItemKey>, by_index: bool,
    ) -> Result<(usize, KeysPage), DependencyError> {
        let page = self
            .user_data
            .page(table, user_id, cursor, self.settings.page_size)
            .await?;
        let found = page.keys.len();
        if by_index && found > 0 {
            let live = self.user_data.existing(table, &page.keys).await?;
            Ok((
                found,
                KeysPage {
                    keys: live,
                    next: page.next,
                },
            ))
        } else {
            Ok((found, page))
        }
    }

    /// Save the job with `next` as this table's progress (one save at a time); `false` when
    /// another runner has taken the job over.
    async fn save_progress(
        &self, shared: &tokio::sync::Mutex<DeletionJob>, table: &CascadeTable, late: bool,
        next: &TableProgress,
    ) -> Result<bool, DependencyError> {
        let mut job = shared.lock().await;
        *progress_of(&mut job, table, late) = next.clone();
        self.save(&mut job).await
    }
}

/// The next pause of a table DynamoDB asked to slow down.
fn slower(pause: Duration) -> Duration {
    (pause * 2).clamp(Duration::from_millis(50), Duration::from_secs(2))
}

fn progress_of<'j>(job: &'j mut DeletionJob, table: &CascadeTable, late: bool) -> &'j mut TableProgress {
    let map = if late {
        &mut job.late_progress
    } else {
        &mut job.progress
    };
    map.entry(table.name.to_owned()).or_default()
}
