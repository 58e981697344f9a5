//! Rendering of the CRD manifest checked in under `crds/`.
//!
//! Both the `crdgen` binary and the drift test call [`crd_yaml`], so the file on disk and the
//! test's expectation can only differ when someone changed the Rust types without
//! regenerating.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON,
};
use kube::CustomResourceExt;

use crate::crd::RocketMQCluster;

/// Path of the generated manifest, relative to the workspace root.
pub const CRD_PATH: &str = "crds/rocketmq.rs_rocketmqclusters.yaml";

const HEADER: &str = "# Generated from the Rust types in operator/src/crd.rs by\n\
                      # `cargo run -p rocketmq-operator --bin crdgen`. Do not edit by hand.\n";

/// The CustomResourceDefinition of `RocketMQCluster`: the derived one, with `spec` optional
/// and defaulted to `{}` (every field of it has a default, so `kubectl apply` of a resource
/// without `spec` makes the default cluster, as the reference says).
pub fn definition() -> CustomResourceDefinition {
    let mut crd = RocketMQCluster::crd();
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(required) = schema.required.as_mut() {
            required.retain(|field| field != "spec");
        }
        if let Some(spec) = schema
            .properties
            .as_mut()
            .and_then(|properties| properties.get_mut("spec"))
        {
            spec.default = Some(JSON(serde_json::json!({})));
        }
    }
    crd
}

/// The CustomResourceDefinition of `RocketMQCluster` as YAML, with a do-not-edit header.
pub fn crd_yaml() -> Result<String, serde_norway::Error> {
    let body = serde_norway::to_string(&definition())?;
    Ok(format!("{HEADER}{body}"))
}
