//! Writes the CRD manifest to `crds/rocketmq.rs_rocketmqclusters.yaml` (or to the path given
//! as the only argument), so the checked-in file always comes from the Rust types.

use std::{path::PathBuf, process::ExitCode};

use rocketmq_operator::crdgen::{CRD_PATH, crd_yaml};

fn main() -> ExitCode {
    // The default path is resolved from the crate, not the working directory, so
    // `cargo run --bin crdgen` writes the same file from anywhere in the workspace.
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the operator crate lives inside the workspace")
                .join(CRD_PATH)
        });
    let yaml = match crd_yaml() {
        Ok(yaml) => yaml,
        Err(error) => {
            eprintln!("crdgen: cannot render the CRD: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(parent) = path.parent()
        && let Err(error) = std::fs::create_dir_all(parent)
    {
        eprintln!("crdgen: cannot create {}: {error}", parent.display());
        return ExitCode::FAILURE;
    }
    if let Err(error) = std::fs::write(&path, yaml) {
        eprintln!("crdgen: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", path.display());
    ExitCode::SUCCESS
}
