//! The benchmark report: a small web server over the runs directory that shows each run record
//! (`bench::record`) as a page with tables and SVG charts, compares two runs, and exports CSV
//! and JSON. The pages only read the directory; the harness writes it (directly, or on a node
//! through `PUT /internal/runs/{id}`, see `receive`).
//!
//! Routes:
//! - `GET /`: the runs, newest first, with a form to compare two.
//! - `GET /runs/{id}`: one run; `/runs/{id}.csv` (tasks) and `/runs/{id}.json` (download).
//! - `GET /compare?a=ID&b=ID`: two runs side by side.
//! - `GET /api/runs`, `GET /api/runs/{id}`: JSON, with ETags (the live page polls these).
//! - `GET /assets/...`: the stylesheet and script, compiled into the binary.
//!
//! HTML routes answer errors with an HTML page, the others with `{"error": ...}`.
//!
//! `sv-appliance report` (and `demo`) serve these routes at `/`; every node serves them under
//! [`NODE_PREFIX`] on its API, over the runs the harness publishes to it (`publish`, `receive`).

mod charts;
mod compare_page;
mod export;
mod html;
mod list_page;
pub mod publish;
pub mod receive;
mod run_page;
mod store;
mod svg;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::error::{Error, Result};
use html::{Live, esc, page};

/// The stylesheet and script, embedded at compile time (also in debug builds) so the binary
/// serves the report with nothing beside it.
#[derive(rust_embed::RustEmbed)]
#[folder = "assets/report/"]
struct Assets;

/// Pages may load only what this server serves: no CDN, no fonts, no inline script.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Where a node's API serves the report.
pub const NODE_PREFIX: &str = "/report";

/// What every handler gets: the runs and where the pages' links must point.
struct Mount {
    dir: PathBuf,
    /// `""` at the root, else the prefix the router is nested under (`html::normalise_base`).
    base: String,
    /// What the list says when there are no runs (`list_page::EMPTY_*`).
    empty_hint: &'static str,
}

type Shared = Arc<Mount>;

/// The report's routes over `runs_dir`, at the root of a server (`sv-appliance report`).
pub fn router(runs_dir: PathBuf) -> Router {
    mounted(runs_dir, "", list_page::EMPTY_LOCAL)
}

/// The report's routes for a node's API, to be nested under [`NODE_PREFIX`]: the links in the
/// pages carry the prefix.
pub fn node_router(runs_dir: PathBuf) -> Router {
    mounted(runs_dir, NODE_PREFIX, list_page::EMPTY_NODE)
}

fn mounted(dir: PathBuf, base: &str, empty_hint: &'static str) -> Router {
    let mount = Mount {
        dir,
        base: html::normalise_base(base),
        empty_hint,
    };
    Router::new()
        .route("/", get(list))
        .route("/runs/{file}", get(run_file))
        .route("/compare", get(compare))
        .route("/api/runs", get(api_list))
        .route("/api/runs/{id}", get(api_run))
        .route("/assets/{*path}", get(asset))
        .fallback(not_found)
        .with_state(Arc::new(mount))
}

/// Serves the report on `listen` until Ctrl-C or SIGTERM.
pub async fn serve(listen: &str, runs_dir: PathBuf) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Error::bad_request(format!(
            "cannot listen on {listen}: {e} (use --listen 127.0.0.1:0 for any free port)"
        ))
    })?;
    let addr = listener.local_addr()?;
    println!(
        "report at http://{addr}/ (runs in {})",
        store::display_dir(&runs_dir).display()
    );
    axum::serve(listener, router(runs_dir))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// An error on an HTML route: the same status as the JSON error, as a page a person can read
/// (its links need the mount point, hence `base`).
struct HtmlError {
    error: Error,
    base: String,
}

impl HtmlError {
    fn at(mount: &Mount) -> impl FnOnce(Error) -> HtmlError + '_ {
        move |error| HtmlError {
            error,
            base: mount.base.clone(),
        }
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        let status = self.error.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self.error, "report request failed");
        }
        let body = format!(
            r#"<h1>{}</h1><p class="error">{}</p><p><a href="{}/">All runs</a></p>"#,
            status,
            esc(&self.error.to_string()),
            esc(&self.base),
        );
        let mut response = html_response(page(&self.base, "error", None, &body));
        *response.status_mut() = status;
        response
    }
}

fn html_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// True when the client already has this version (`If-None-Match`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == "*" || tag.trim() == etag)
        })
}

/// A JSON body with its ETag, or 304 when the client's copy is current.
fn json_with_etag(headers: &HeaderMap, body: Vec<u8>) -> Response {
    let etag = store::etag(&body);
    let etag_header = HeaderValue::from_str(&etag).expect("hex etag is a valid header");
    if not_modified(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag_header),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    b: Option<String>,
}

async fn list(
    State(mount): State<Shared>,
    Query(query): Query<ListQuery>,
) -> Result<Response, HtmlError> {
    let (runs, problems) = store::list(&mount.dir)
        .await
        .map_err(HtmlError::at(&mount))?;
    let json = list_json(&runs, &problems).map_err(HtmlError::at(&mount))?;
    let etag = store::etag(&json);
    // The list reloads itself only while something is going; finished runs do not change.
    let api = format!("{}/api/runs", mount.base);
    let live = runs.iter().any(|r| r.status == "running").then_some(Live {
        url: &api,
        etag: &etag,
    });
    let body = list_page::render(
        &runs,
        &problems,
        &mount.dir,
        live,
        query.b.as_deref(),
        &mount.base,
        mount.empty_hint,
    );
    Ok(html_response(body))
}

fn list_json(runs: &[crate::bench::record::RunRecord], problems: &[String]) -> Result<Vec<u8>> {
    let summaries: Vec<store::RunSummary> = runs.iter().map(store::RunSummary::of).collect();
    serde_json::to_vec_pretty(&serde_json::json!({ "runs": summaries, "problems": problems }))
        .map_err(Error::internal)
}

async fn api_list(State(mount): State<Shared>, headers: HeaderMap) -> Result<Response> {
    let (runs, problems) = store::list(&mount.dir).await?;
    Ok(json_with_etag(&headers, list_json(&runs, &problems)?))
}

async fn api_run(
    State(mount): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let run = store::load(&mount.dir, &id).await?;
    Ok(json_with_etag(&headers, store::record_json(&run)?))
}

/// `/runs/{id}`, `/runs/{id}.csv` and `/runs/{id}.json` share one segment, so the suffix
/// picks the representation.
async fn run_file(State(mount): State<Shared>, Path(file): Path<String>) -> Response {
    if let Some(id) = file.strip_suffix(".csv") {
        return download(&mount.dir, id, "csv").await.into_response();
    }
    if let Some(id) = file.strip_suffix(".json") {
        return download(&mount.dir, id, "json").await.into_response();
    }
    let rendered = async {
        let run = store::load(&mount.dir, &file).await?;
        let json = store::record_json(&run)?;
        Ok::<_, Error>(run_page::render(&run, &store::etag(&json), &mount.base))
    };
    match rendered.await {
        Ok(body) => html_response(body),
        Err(e) => HtmlError::at(&mount)(e).into_response(),
    }
}

async fn download(dir: &FsPath, id: &str, format: &str) -> Result<Response> {
    let run = store::load(dir, id).await?;
    let (content_type, body) = if format == "csv" {
        (
            "text/csv; charset=utf-8",
            export::tasks_csv(&run).into_bytes(),
        )
    } else {
        ("application/json", store::record_json(&run)?)
    };
    // The header value is quoted, so keep the file name to characters that need no escaping.
    let file_name: String = run
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{file_name}.{format}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

async fn compare(
    State(mount): State<Shared>,
    Query(query): Query<CompareQuery>,
) -> Result<Response, HtmlError> {
    let (Some(a), Some(b)) = (query.a, query.b) else {
        return Err(HtmlError::at(&mount)(Error::bad_request(format!(
            "compare needs two runs: {}/compare?a=ID&b=ID (pick them on the list of runs)",
            mount.base
        ))));
    };
    let (a, b) = tokio::try_join!(store::load(&mount.dir, &a), store::load(&mount.dir, &b))
        .map_err(HtmlError::at(&mount))?;
    Ok(html_response(compare_page::render(&a, &b, &mount.base)))
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response> {
    let file = Assets::get(&path)
        .ok_or_else(|| Error::NotFound(format!("no asset {path:?} in the report")))?;
    let etag = format!(
        "\"{}\"",
        crate::checksum::hex(&file.metadata.sha256_hash()[..12])
    );
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::ETAG, etag),
        ],
        file.data.into_owned(),
    )
        .into_response())
}

async fn not_found(State(mount): State<Shared>, OriginalUri(uri): OriginalUri) -> HtmlError {
    // The original URI: nested, the request's own has lost the prefix.
    HtmlError::at(&mount)(Error::NotFound(format!("no page at {}", uri.path())))
}
