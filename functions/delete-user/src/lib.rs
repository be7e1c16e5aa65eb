//! `DELETE /admin/users/{userId}` (run the delete routine under a time budget),
//! `GET /admin/users/{userId}/deletion` (the job's status) and
//! `GET /admin/users/{userId}/deletion-preview` (what a deletion would remove).

use domain::deletion::{DeleteOutcome, Deletion};
use domain::job::{DeletionJob, LatePassView};
use domain::model::RequestMeta;
use domain::policy::Action;
use domain::types::UserId;
use http_api::request::TokenRules;
use http_api::{errors, request, response, Problem};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::Instrument;

/// Kept free of the Lambda deadline, so the answer still gets out (API Gateway waits 30 s):
/// the routine stops starting steps this long before it.
pub const LAMBDA_MARGIN: Duration = Duration::from_secs(3);
/// Every AWS call ends this long before the Lambda deadline, whatever it waits for.
pub const CALL_MARGIN: Duration = Duration::from_secs(1);

pub struct DeleteApp {
    pub deletion: Deletion,
    /// `DELETE_BUDGET_MS`: how long a request runs the routine before handing the rest to
    /// the worker (`202`).
    pub budget: Duration,
    /// What a token must be (`APP_CLIENT_ID`).
    pub tokens: TokenRules,
}

/// The optional request body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    #[serde(default)]
    acknowledge_privileged: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Completed<'a> {
    status: &'static str,
    job_id: &'a str,
    deleted: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
struct InProgress<'a> {
    status: &'static str,
    job_id: &'a str,
}

#[derive(Debug, Serialize)]
struct JobStatus<'a> {
    user_id: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<&'a str>,
    /// Once completed: the last pass, after the longest access-token lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    late_pass: Option<LatePassView>,
}

enum Route {
    User,
    Status,
    Preview,
}

/// The function's handler. Infallible: every failure is a problem+json answer.
pub async fn handle(app: &DeleteApp, req: Request) -> Response<Body> {
    let meta = request::meta(&req, &app.tokens);
    let span = tracing::info_span!("http", request_id = %meta.request_id, method = %req.method());
    let deadline = req
        .lambda_context_ref()
        .and_then(|c| aws_adapters::deadline::before_lambda_deadline(c.deadline, CALL_MARGIN));
    aws_adapters::deadline::within_opt(deadline, async {
        let route = match request::admin_users_tail(&req).as_deref() {
            Some([_]) => Some(Route::User),
            Some([_, tail]) if tail == "deletion" => Some(Route::Status),
            Some([_, tail]) if tail == "deletion-preview" => Some(Route::Preview),
            _ => None,
        };
        let result = match (route, req.method().clone()) {
            (None, _) => Err(Problem::not_found()),
            (Some(Route::User), Method::DELETE) => delete(app, &meta, &req).await,
            (Some(Route::User), _) => Err(Problem::method_not_allowed("DELETE")),
            (Some(Route::Status), Method::GET) => status(app, &meta, &req).await,
            (Some(Route::Preview), Method::GET) => preview(app, &meta, &req).await,
            (Some(_), _) => Err(Problem::method_not_allowed("GET")),
        };
        result.unwrap_or_else(|problem| problem.respond(&meta.request_id))
    })
    .instrument(span)
    .await
}

async fn delete(app: &DeleteApp, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    if meta.caller.is_none() {
        let denial = app
            .deletion
            .refuse_anonymous(meta, Action::DeleteUser, &request::audit_target(req))
            .await;
        return Err(errors::denied(denial));
    }
    let target = request::user_id(req)?;
    let body: DeleteBody = http_api::body::read_json(req)?.unwrap_or_default();
    let acknowledged = body.acknowledge_privileged.unwrap_or(false);
    let deadline = tokio::time::Instant::now() + budget(app.budget, req);

    let outcome = app
        .deletion
        .delete(meta, &target, acknowledged, deadline)
        .await
        .map_err(errors::delete_error)?;
    Ok(match &outcome {
        DeleteOutcome::Completed(job) => response::json(
            StatusCode::OK,
            &Completed {
                status: "completed",
                job_id: &job.job_id,
                deleted: job.counts(),
            },
            &meta.request_id,
        ),
        DeleteOutcome::InProgress(job) => response::with_header(
            response::json(
                StatusCode::ACCEPTED,
                &InProgress {
                    status: "in_progress",
                    job_id: &job.job_id,
                },
                &meta.request_id,
            ),
            "location",
            &status_location(&target),
        ),
    })
}

/// `min(budget, Lambda time left - LAMBDA_MARGIN)`; the budget alone outside Lambda (no
/// context, or the default context with no deadline).
pub fn budget(budget: Duration, req: &Request) -> Duration {
    let deadline_ms = req.lambda_context_ref().map_or(0, |c| c.deadline);
    aws_adapters::deadline::budget(budget, deadline_ms, LAMBDA_MARGIN)
}

fn status_location(target: &UserId) -> String {
    format!("/admin/users/{}/deletion", target.as_str())
}

async fn status(app: &DeleteApp, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    let target = request::user_id(req)?;
    let job = app
        .deletion
        .status(meta, &target)
        .await
        .map_err(errors::delete_error)?;
    let counts = job.as_ref().map(DeletionJob::counts);
    let answer = match &job {
        None => JobStatus {
            user_id: target.as_str(),
            status: "not_started",
            job_id: None,
            step: None,
            deleted: None,
            created_at: None,
            completed_at: None,
            late_pass: None,
        },
        Some(job) => JobStatus {
            user_id: target.as_str(),
            status: job.status().as_str(),
            job_id: Some(&job.job_id),
            step: Some(job.step.as_str()),
            deleted: counts,
            created_at: Some(&job.created_at),
            completed_at: job.completed_at.as_deref(),
            late_pass: job.late_pass(),
        },
    };
    Ok(response::json(StatusCode::OK, &answer, &meta.request_id))
}

async fn preview(app: &DeleteApp, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, Problem> {
    let target = request::user_id(req)?;
    let preview = app
        .deletion
        .preview(meta, &target)
        .await
        .map_err(errors::delete_error)?;
    Ok(response::json(StatusCode::OK, &preview, &meta.request_id))
}
