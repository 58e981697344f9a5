//! What the mocked-API tests share: the record of one request, and the RBAC check that
//! every request the operator makes is allowed by `manifests/rbac.yaml`.

#![allow(dead_code)]

use http::{Method, Response, StatusCode};
use kube::client::Body;
use serde_json::Value;

/// A JSON answer of the fake API server.
pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("JSON")))
        .expect("valid response")
}

/// One request the operator made.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Content type (tells a server-side apply from a merge patch).
    pub content_type: String,
    /// Body as JSON (`Null` when empty).
    pub body: Value,
}

impl Recorded {
    /// The record of a request with head `parts` and body `bytes`.
    pub fn new(parts: &http::request::Parts, bytes: &[u8]) -> Self {
        Self {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: serde_json::from_slice(bytes).unwrap_or(Value::Null),
        }
    }

    /// A server-side apply (of an object or a status).
    pub fn is_server_side_apply(&self) -> bool {
        self.method == Method::PATCH && self.content_type.starts_with("application/apply-patch")
    }

    /// A server-side apply of an object (not of a status).
    pub fn is_apply(&self) -> bool {
        self.is_server_side_apply() && !self.path.ends_with("/status")
    }
}

/// RBAC rules from `manifests/rbac.yaml`: (apiGroup, resource, verb).
pub fn rbac_rules() -> Vec<(String, String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/rbac.yaml");
    let text = std::fs::read_to_string(&path).expect("rbac.yaml readable");
    let mut rules = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let document: Value = serde::Deserialize::deserialize(document).expect("rbac.yaml parses");
        if !matches!(document["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in document["rules"].as_array().expect("rules") {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .unwrap_or_else(|| panic!("rule without {key}: {rule}"))
                    .iter()
                    .map(|v| v.as_str().expect("string").to_string())
                    .collect()
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        assert_ne!(verb, "*", "no wildcard verbs");
                        assert_ne!(resource, "*", "no wildcard resources");
                        rules.push((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    rules
}

/// The authorization attributes kube-apiserver derives from a request.
pub fn authorization_attributes(request: &Recorded) -> Vec<(String, String, String)> {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("unexpected path {}", request.path),
    };
    let (resource, named) = match rest {
        ["namespaces", _, resource] => (resource.to_string(), false),
        ["namespaces", _, resource, _name] => (resource.to_string(), true),
        ["namespaces", _, resource, _name, sub] => (format!("{resource}/{sub}"), true),
        [resource] => (resource.to_string(), false),
        _ => panic!("unexpected path {}", request.path),
    };
    let verbs: &[&str] = match (request.method.as_str(), named) {
        ("GET", true) => &["get"],
        ("GET", false) if request.query.contains("watch=true") => &["watch"],
        ("GET", false) => &["list"],
        ("POST", _) => &["create"],
        // A server-side apply may create the object, which is authorized as create too.
        ("PATCH", _) if request.is_server_side_apply() && !resource.ends_with("/status") => {
            &["patch", "create"]
        }
        ("PATCH", _) => &["patch"],
        ("PUT", _) => &["update"],
        ("DELETE", _) => &["delete"],
        (method, _) => panic!("unexpected method {method}"),
    };
    verbs
        .iter()
        .map(|verb| (group.to_string(), resource.clone(), verb.to_string()))
        .collect()
}
