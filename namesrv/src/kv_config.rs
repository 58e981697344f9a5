//! Namespaced key/value configs (`KVConfigManager`), persisted as Java's
//! `{"configTable":{namespace:{key:value}}}` so a Java name server's `kvConfig.json`
//! loads unchanged.
//!
//! Invariant: a change is acknowledged only after the file holding it has been written
//! and renamed into place, so a crash never leaves a half-written file behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KvConfigFile {
    #[serde(default)]
    config_table: BTreeMap<String, BTreeMap<String, String>>,
}

/// Why the KV store could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum KvConfigError {
    /// Reading or writing the file failed.
    #[error("kv config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file exists but is not valid JSON of the expected shape.
    #[error("kv config file {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

/// The KV store.
///
/// A write prepares a new table, persists it, and only then swaps it in: readers (route
/// lookups read the order-topic namespace) never wait behind an fsync, and a failed write
/// leaves memory and disk as they were. Writers are serialised by `writer`.
pub struct KvConfigManager {
    path: PathBuf,
    table: RwLock<BTreeMap<String, BTreeMap<String, String>>>,
    writer: std::sync::Mutex<()>,
}

impl KvConfigManager {
    /// Loads the store from `path`; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<Self, KvConfigError> {
        let table = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => BTreeMap::new(),
            Ok(bytes) => {
                rocketmq_common::json::from_slice_lenient::<KvConfigFile>(&bytes)
                    .map_err(|source| KvConfigError::Parse {
                        path: path.to_path_buf(),
                        source,
                    })?
                    .config_table
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(KvConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            table: RwLock::new(table),
            writer: std::sync::Mutex::new(()),
        })
    }

    /// Applies `change` to a copy of the table, persists the copy and swaps it in; returns
    /// without writing when `change` reports no change.
    fn write(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, BTreeMap<String, String>>) -> bool,
    ) -> Result<(), KvConfigError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy = self.table.read().unwrap_or_else(|e| e.into_inner()).clone();
        if !change(&mut copy) {
            return Ok(());
        }
        self.persist(&copy)?;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = copy;
        Ok(())
    }

    /// Sets `namespace.key = value` and persists. Blocks on file I/O.
    pub fn put(&self, namespace: &str, key: &str, value: &str) -> Result<(), KvConfigError> {
        self.write(|table| {
            table
                .entry(namespace.to_string())
                .or_default()
                .insert(key.to_string(), value.to_string());
            true
        })
    }

    /// The value of `namespace.key`.
    pub fn get(&self, namespace: &str, key: &str) -> Option<String> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        table.get(namespace)?.get(key).cloned()
    }

    /// Deletes `namespace.key` and persists; deleting a missing key is not an error.
    /// Blocks on file I/O.
    pub fn delete(&self, namespace: &str, key: &str) -> Result<(), KvConfigError> {
        self.write(|table| {
            let Some(ns) = table.get_mut(namespace) else {
                return false;
            };
            if ns.remove(key).is_none() {
                return false;
            }
            if ns.is_empty() {
                table.remove(namespace);
            }
            true
        })
    }

    /// All entries of a namespace, `None` if it has none.
    pub fn namespace(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        table.get(namespace).filter(|ns| !ns.is_empty()).cloned()
    }

    fn persist(
        &self,
        table: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<(), KvConfigError> {
        let json = serde_json::to_vec_pretty(&serde_json::json!({ "configTable": table }))
            .expect("string maps serialise to JSON");
        rocketmq_common::persist::write_file_atomically(&self.path, &json).map_err(|source| {
            KvConfigError::Io {
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reload_and_reads_java_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv").join("kvConfig.json");
        let kv = KvConfigManager::load(&path).unwrap();
        kv.put("ORDER_TOPIC_CONFIG", "T1", "broker-a:4").unwrap();
        kv.put("ns", "k", "v").unwrap();
        kv.delete("ns", "k").unwrap();
        kv.delete("ns", "missing").unwrap();
        let kv = KvConfigManager::load(&path).unwrap();
        assert_eq!(
            kv.get("ORDER_TOPIC_CONFIG", "T1").as_deref(),
            Some("broker-a:4")
        );
        assert_eq!(kv.namespace("ns"), None);

        std::fs::write(&path, r#"{"configTable":{"A":{"x":"1"}}}"#).unwrap();
        let kv = KvConfigManager::load(&path).unwrap();
        assert_eq!(kv.get("A", "x").as_deref(), Some("1"));
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kvConfig.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = KvConfigManager::load(&path)
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains("kvConfig.json"), "{err}");
    }
}
