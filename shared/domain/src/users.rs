//! `GET /admin/users`: the Users tab's table.

use crate::access::authorize_untargeted;
use crate::model::{Page, Profile, RequestMeta};
use crate::ports::*;
use policy::{Action, Denial};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("denied: {}", .0.code())]
    Denied(Denial),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

#[derive(Clone)]
pub struct Directory {
    pub profiles: Arc<dyn Profiles>,
    pub log: Arc<dyn SecurityLog>,
    pub clock: Arc<dyn Clock>,
}

impl Directory {
    /// A request without a caller (no `sub` claim): refused by the policy and audited.
    pub async fn refuse_anonymous(&self, meta: &RequestMeta, action: Action, target_id: &str) -> Denial {
        crate::access::refuse_anonymous(&*self.log, &*self.clock, meta, action, target_id).await
    }

    pub async fn list(&self, meta: &RequestMeta, query: &ListQuery) -> Result<Page<Profile>, ListError> {
        authorize_untargeted(&*self.profiles, &*self.log, &*self.clock, meta, Action::ListUsers)
            .await?
            .map_err(ListError::Denied)?;
        let mut query = query.clone();
        query.limit = query.limit.clamp(1, 100);
        Ok(self.profiles.list(&query).await?)
    }
}
