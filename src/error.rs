//! The crate's one error type, mapped to an HTTP status (server) and an exit code (CLI).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request or input is malformed: bad JSON, bad query syntax, bad SQL, a bad flag.
    #[error("{0}")]
    BadRequest(String),
    /// A named thing (topic, table, file) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A topic that already exists with other settings.
    #[error("{0}")]
    Conflict(String),
    /// A batch or body over the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// A configuration file or value that cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The node cannot serve this yet (starting, no raft leader).
    #[error("{0}")]
    Unavailable(String),
    /// A query ran past its deadline.
    #[error("{0}")]
    Timeout(String),
    /// An admin request without the cluster token.
    #[error("{0}")]
    Unauthorized(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A bug or an unexpected failure of a dependency.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps any foreign error as [`Error::Internal`]; use only where the cause is not the user's.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::Config(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Io(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Short machine-readable kind, sent as `error_type` beside the message.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::TooLarge(_) => "too_large",
            Error::Config(_) => "config",
            Error::Unavailable(_) => "unavailable",
            Error::Timeout(_) => "timeout",
            Error::Unauthorized(_) => "unauthorized",
            Error::Io(_) => "io",
            Error::Internal(_) => "internal",
        }
    }

    /// 1 for anything the user can fix (input, config, unreachable node), 2 for internal faults.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Io(_) | Error::Internal(_) => 2,
            _ => 1,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::json!({ "error": self.to_string(), "error_type": self.kind() });
        (status, axum::Json(body)).into_response()
    }
}
