//! HTTP plumbing every endpoint shares: one method per resource, errors
//! as JSON, and the bearer token.

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::node::{Admin, AdminActor};

/// A resource taking one method: any other gets 405 saying which.
pub(super) fn resource<F, Args>(path: &str, method: Method, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let allowed = method.clone();
    web::resource(path)
        .route(web::method(method).to(handler))
        .default_service(web::to(move |req: HttpRequest| {
            let allowed = allowed.clone();
            async move { method_not_allowed(&req, &allowed) }
        }))
}

pub(super) fn error(status: StatusCode, message: String) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

pub(super) async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {} {} (there are GET /, /health, /ready, /metrics and \
             /actors, GET /actors/NAME/state/KEY, and POST /actors/NAME/pause and /resume)",
            req.method(),
            req.path()
        ),
    )
}

fn method_not_allowed(req: &HttpRequest, allowed: &Method) -> HttpResponse {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} takes {allowed}, not {}", req.path(), req.method()),
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_str(allowed.as_str())
            .unwrap_or_else(|_| actix_web::http::header::HeaderValue::from_static("GET")),
    );
    response
}

/// The actor `name` of `admin`, or the 404 to answer.
pub(super) fn named<'a>(admin: &'a Admin, name: &str) -> Result<&'a AdminActor, Box<HttpResponse>> {
    admin.actor(name).ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            format!("node `{}` has no actor `{name}`", admin.node),
        ))
    })
}

/// `None` when the request may proceed, else the 401 to answer.
pub(super) fn refused(req: &HttpRequest, admin: &Admin) -> Option<HttpResponse> {
    let token = admin.token.as_ref()?;
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => None,
        Some(_) => Some(error(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not this endpoint's".into(),
        )),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "this endpoint requires `Authorization: Bearer TOKEN`".into(),
        )),
    }
}

/// Compares without returning early at the first differing byte.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
