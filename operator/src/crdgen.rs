//! Rendering of the CRD manifest checked in under `crds/`.
//!
//! Both the `crdgen` binary and the drift test call [`crd_yaml`], so the file on disk and the
//! test's expectation can only differ when someone changed the Rust types without
//! regenerating.

use kube::CustomResourceExt;

use crate::crd::RocketMQCluster;

/// Path of the generated manifest, relative to the workspace root.
pub const CRD_PATH: &str = "crds/rocketmq.rs_rocketmqclusters.yaml";

const HEADER: &str = "# Generated from the Rust types in operator/src/crd.rs by\n\
                      # `cargo run -p rocketmq-operator --bin crdgen`. Do not edit by hand.\n";

/// The CustomResourceDefinition of `RocketMQCluster` as YAML, with a do-not-edit header.
pub fn crd_yaml() -> Result<String, serde_norway::Error> {
    let body = serde_norway::to_string(&RocketMQCluster::crd())?;
    Ok(format!("{HEADER}{body}"))
}
