//! The broker's persisted metadata: topic configs, subscription groups and consumer
//! offsets, in RocketMQ's files under `<storePathRootDir>/config/` (`topics.json`,
//! `subscriptionGroup.json`, `consumerOffset.json`) so a Java broker's files load as they are.
//!
//! Invariants: a topic or group change is acknowledged only after its file is replaced
//! atomically; every change bumps the table's [`DataVersion`], which the name server uses
//! to notice it. Consumer offsets are flushed periodically and at shutdown (as in Java), so
//! a crash can replay at most one flush interval of messages, never skip any.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use rocketmq_common::body::SubscriptionGroupConfig;
use rocketmq_common::route::{
    DataVersion, PERM_INHERIT, PERM_READ, PERM_WRITE, TopicConfig, TopicConfigSerializeWrapper,
};
use rocketmq_common::topic::{
    AUTO_CREATE_TOPIC_KEY_TOPIC, SCHEDULE_TOPIC, SELF_TEST_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
};
use serde::{Deserialize, Serialize};

/// Why metadata could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path} is not valid: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn bump(version: &mut DataVersion) {
    version.counter += 1;
    version.timestamp = now_millis();
}

fn load_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, MetadataError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(T::default()),
        Ok(bytes) => rocketmq_common::json::from_slice_lenient(&bytes).map_err(|source| {
            MetadataError::Parse {
                path: path.to_path_buf(),
                source,
            }
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(source) => Err(MetadataError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes snapshots of one file in version order without holding the table's lock: the
/// table is changed and copied under its lock, then written here, and a snapshot older than
/// one already written is skipped (the newer one contains its change).
#[derive(Debug)]
struct Persister {
    path: PathBuf,
    written: parking_lot::Mutex<i64>,
}

impl Persister {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            written: parking_lot::Mutex::new(i64::MIN),
        }
    }

    /// Writes `snapshot` (at table version `counter`) unless a newer one is on disk.
    fn write<T: Serialize>(&self, counter: i64, snapshot: &T) -> Result<(), MetadataError> {
        let mut written = self.written.lock();
        if counter <= *written {
            return Ok(());
        }
        save_json(&self.path, snapshot)?;
        *written = counter;
        Ok(())
    }
}

fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), MetadataError> {
    let bytes = serde_json::to_vec_pretty(value).expect("metadata serialises to JSON");
    rocketmq_common::persist::write_file_atomically(path, &bytes).map_err(|source| {
        MetadataError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Topic configs of this broker (`TopicConfigManager`).
///
/// Changes are made in memory under the table's lock and written to disk after it is
/// released, so readers (every send) never wait for an fsync; a change is acknowledged only
/// once a snapshot containing it is on disk. Writes block: async callers run them on
/// blocking threads.
pub struct TopicConfigManager {
    persister: Persister,
    inner: RwLock<TopicConfigSerializeWrapper>,
}

impl TopicConfigManager {
    /// Loads `topics.json` and adds the system topics a broker always has.
    pub fn load(
        path: PathBuf,
        cluster_name: &str,
        broker_name: &str,
        auto_create_topic_enable: bool,
        default_queue_nums: i32,
        timer_enable: bool,
    ) -> Result<Self, MetadataError> {
        let mut wrapper: TopicConfigSerializeWrapper = load_json(&path)?;
        let mut system = vec![
            TopicConfig::new(SELF_TEST_TOPIC, 1),
            TopicConfig {
                perm: PERM_INHERIT,
                ..TopicConfig::new(cluster_name, 16)
            },
            TopicConfig {
                perm: PERM_INHERIT,
                ..TopicConfig::new(broker_name, 1)
            },
            TopicConfig::new(SCHEDULE_TOPIC, 18),
            TopicConfig::new(TRANS_HALF_TOPIC, 1),
            TopicConfig::new(TRANS_OP_HALF_TOPIC, 1),
            TopicConfig::new(
                rocketmq_common::pop::revive_topic(cluster_name),
                crate::pop::REVIVE_QUEUE_NUM,
            ),
        ];
        if timer_enable {
            system.push(TopicConfig::new(TIMER_TOPIC, 1));
        }
        if auto_create_topic_enable {
            system.push(TopicConfig {
                perm: PERM_INHERIT | PERM_READ | PERM_WRITE,
                ..TopicConfig::new(AUTO_CREATE_TOPIC_KEY_TOPIC, default_queue_nums)
            });
        }
        for config in system {
            wrapper
                .topic_config_table
                .entry(config.topic_name.clone())
                .or_insert(config);
        }
        Ok(Self {
            persister: Persister::new(path),
            inner: RwLock::new(wrapper),
        })
    }

    /// Bumps the version under the write lock and hands back what to persist.
    fn changed(w: &mut TopicConfigSerializeWrapper) -> (i64, TopicConfigSerializeWrapper) {
        bump(&mut w.data_version);
        (w.data_version.counter, w.clone())
    }

    /// The config of `topic`.
    pub fn get(&self, topic: &str) -> Option<TopicConfig> {
        self.inner.read().topic_config_table.get(topic).cloned()
    }

    /// Creates or replaces a topic and persists; returns false if nothing changed.
    pub fn upsert(&self, config: TopicConfig) -> Result<bool, MetadataError> {
        let (counter, snapshot) = {
            let mut w = self.inner.write();
            if w.topic_config_table.get(&config.topic_name) == Some(&config) {
                return Ok(false);
            }
            w.topic_config_table
                .insert(config.topic_name.clone(), config);
            Self::changed(&mut w)
        };
        self.persister.write(counter, &snapshot)?;
        Ok(true)
    }

    /// Creates `topic` if absent (auto-creation, retry topics); returns its config and
    /// whether it was created.
    pub fn get_or_create(&self, config: TopicConfig) -> Result<(TopicConfig, bool), MetadataError> {
        if let Some(existing) = self.get(&config.topic_name) {
            return Ok((existing, false));
        }
        let (counter, snapshot) = {
            let mut w = self.inner.write();
            if let Some(existing) = w.topic_config_table.get(&config.topic_name) {
                return Ok((existing.clone(), false));
            }
            w.topic_config_table
                .insert(config.topic_name.clone(), config.clone());
            Self::changed(&mut w)
        };
        self.persister.write(counter, &snapshot)?;
        Ok((config, true))
    }

    /// Deletes a topic; returns whether it existed.
    pub fn delete(&self, topic: &str) -> Result<bool, MetadataError> {
        let (counter, snapshot) = {
            let mut w = self.inner.write();
            if w.topic_config_table.remove(topic).is_none() {
                return Ok(false);
            }
            Self::changed(&mut w)
        };
        self.persister.write(counter, &snapshot)?;
        Ok(true)
    }

    /// All topics and the table's version (registration body, GET_ALL_TOPIC_CONFIG).
    pub fn snapshot(&self) -> TopicConfigSerializeWrapper {
        self.inner.read().clone()
    }

    /// The table's version.
    pub fn data_version(&self) -> DataVersion {
        self.inner.read().data_version
    }

    /// Creates a config for every topic that has messages (ConsumeQueues) but no config:
    /// a promoted slave whose last metadata sync predates the topic still routes it.
    /// `queues` yields (topic, queue id); returns the topics created.
    pub fn adopt_stored_topics(
        &self,
        queues: impl IntoIterator<Item = (String, i32)>,
    ) -> Result<Vec<String>, MetadataError> {
        let mut wanted: BTreeMap<String, i32> = BTreeMap::new();
        for (topic, qid) in queues {
            let n = wanted.entry(topic).or_insert(0);
            *n = (*n).max(qid + 1);
        }
        let mut created = Vec::new();
        for (topic, n) in wanted {
            if self.get(&topic).is_none() && self.get_or_create(TopicConfig::new(&topic, n))?.1 {
                created.push(topic);
            }
        }
        Ok(created)
    }

    /// A slave takes its master's topics (they must be there when it is promoted);
    /// returns whether anything changed.
    pub fn sync_from_master(
        &self,
        master: &TopicConfigSerializeWrapper,
    ) -> Result<bool, MetadataError> {
        let (counter, snapshot) = {
            let mut w = self.inner.write();
            if w.topic_config_table == master.topic_config_table {
                return Ok(false);
            }
            w.topic_config_table = master.topic_config_table.clone();
            Self::changed(&mut w)
        };
        self.persister.write(counter, &snapshot)?;
        Ok(true)
    }

    /// Moves the version on without a topic change, so name servers take the next
    /// registration as new (the broker's permission changed).
    pub fn bump_version(&self) {
        bump(&mut self.inner.write().data_version);
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SubscriptionGroupFile {
    data_version: DataVersion,
    subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

/// Subscription groups (`SubscriptionGroupManager`).
///
/// Written like [`TopicConfigManager`]: in memory under the lock, to disk after it.
pub struct SubscriptionGroupManager {
    persister: Persister,
    inner: RwLock<SubscriptionGroupFile>,
}

impl SubscriptionGroupManager {
    /// Loads `subscriptionGroup.json`.
    pub fn load(path: PathBuf) -> Result<Self, MetadataError> {
        Ok(Self {
            inner: RwLock::new(load_json(&path)?),
            persister: Persister::new(path),
        })
    }

    /// The config of `group`.
    pub fn get(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        self.inner
            .read()
            .subscription_group_table
            .get(group)
            .cloned()
    }

    /// The group's config, created with defaults when `auto_create` allows.
    pub fn get_or_create(
        &self,
        group: &str,
        auto_create: bool,
    ) -> Result<Option<SubscriptionGroupConfig>, MetadataError> {
        if let Some(c) = self.get(group) {
            return Ok(Some(c));
        }
        if !auto_create {
            return Ok(None);
        }
        let config = SubscriptionGroupConfig::new(group);
        self.upsert(config.clone())?;
        Ok(Some(config))
    }

    /// Creates or replaces a group and persists.
    pub fn upsert(&self, config: SubscriptionGroupConfig) -> Result<(), MetadataError> {
        let (counter, snapshot) = {
            let mut f = self.inner.write();
            f.subscription_group_table
                .insert(config.group_name.clone(), config);
            bump(&mut f.data_version);
            (f.data_version.counter, f.clone())
        };
        self.persister.write(counter, &snapshot)
    }

    /// Deletes a group; returns whether it existed.
    pub fn delete(&self, group: &str) -> Result<bool, MetadataError> {
        let (counter, snapshot) = {
            let mut f = self.inner.write();
            if f.subscription_group_table.remove(group).is_none() {
                return Ok(false);
            }
            bump(&mut f.data_version);
            (f.data_version.counter, f.clone())
        };
        self.persister.write(counter, &snapshot)?;
        Ok(true)
    }

    /// Every group (GET_ALL_SUBSCRIPTIONGROUP_CONFIG body).
    pub fn snapshot_json(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.inner.read()).expect("groups serialise to JSON")
    }

    /// A slave takes its master's groups (a GET_ALL_SUBSCRIPTIONGROUP_CONFIG body).
    pub fn sync_from_master(&self, body: &[u8]) -> Result<bool, MetadataError> {
        let master: SubscriptionGroupFile = rocketmq_common::json::from_slice_lenient(body)
            .map_err(|source| MetadataError::Parse {
                path: self.persister.path.clone(),
                source,
            })?;
        let (counter, snapshot) = {
            let mut f = self.inner.write();
            if f.subscription_group_table == master.subscription_group_table {
                return Ok(false);
            }
            f.subscription_group_table = master.subscription_group_table;
            bump(&mut f.data_version);
            (f.data_version.counter, f.clone())
        };
        self.persister.write(counter, &snapshot)?;
        Ok(true)
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ConsumerOffsetFile {
    offset_table: HashMap<String, BTreeMap<i32, i64>>,
}

/// Committed consumer offsets (`ConsumerOffsetManager`), keyed `topic@group`.
pub struct ConsumerOffsetManager {
    path: PathBuf,
    inner: RwLock<ConsumerOffsetFile>,
    dirty: std::sync::atomic::AtomicBool,
    /// Offsets reset by an admin and not yet seen by the consumer: (group, topic, queue) →
    /// offset. The next pull of that queue is told to move there; commits meanwhile are
    /// ignored so a consumer still running from the old position cannot undo the reset.
    resets: parking_lot::Mutex<HashMap<(String, String, i32), i64>>,
    /// Serialises flushes, so an older snapshot never lands after a newer one.
    flush_lock: parking_lot::Mutex<()>,
}

fn offset_key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

impl ConsumerOffsetManager {
    /// Loads `consumerOffset.json` (Java writes integer keys unquoted; both forms load).
    pub fn load(path: PathBuf) -> Result<Self, MetadataError> {
        Ok(Self {
            inner: RwLock::new(load_json(&path)?),
            path,
            dirty: Default::default(),
            resets: Default::default(),
            flush_lock: Default::default(),
        })
    }

    /// Resets the group's offset on a queue (INVOKE_BROKER_TO_RESET_OFFSET): committed at
    /// once, and announced to the consumer on its next pull.
    pub fn assign_reset(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        self.commit(group, topic, queue_id, offset);
        self.resets
            .lock()
            .insert((group.to_string(), topic.to_string(), queue_id), offset);
    }

    /// Takes the pending reset of a queue, if any.
    pub fn take_reset(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.resets
            .lock()
            .remove(&(group.to_string(), topic.to_string(), queue_id))
    }

    /// Whether a reset of the queue is waiting for the consumer.
    pub fn has_reset(&self, group: &str, topic: &str, queue_id: i32) -> bool {
        self.resets
            .lock()
            .contains_key(&(group.to_string(), topic.to_string(), queue_id))
    }

    /// Commits `offset` for group/topic/queue.
    pub fn commit(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        self.inner
            .write()
            .offset_table
            .entry(offset_key(topic, group))
            .or_default()
            .insert(queue_id, offset);
        self.dirty.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The committed offset, `None` if the group never committed on that queue.
    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.inner
            .read()
            .offset_table
            .get(&offset_key(topic, group))
            .and_then(|q| q.get(&queue_id).copied())
    }

    /// All committed offsets of group on topic.
    pub fn offsets_of(&self, group: &str, topic: &str) -> BTreeMap<i32, i64> {
        self.inner
            .read()
            .offset_table
            .get(&offset_key(topic, group))
            .cloned()
            .unwrap_or_default()
    }

    /// Topics `group` has offsets on.
    pub fn topics_of_group(&self, group: &str) -> Vec<String> {
        let suffix = format!("@{group}");
        self.inner
            .read()
            .offset_table
            .keys()
            .filter_map(|k| k.strip_suffix(&suffix).map(str::to_string))
            .collect()
    }

    /// Every `(group, topic, queue → offset)` (metrics, stats).
    pub fn all_offsets(&self) -> Vec<(String, String, BTreeMap<i32, i64>)> {
        self.inner
            .read()
            .offset_table
            .iter()
            .filter_map(|(key, queues)| {
                let (topic, group) = key.rsplit_once('@')?;
                Some((group.to_string(), topic.to_string(), queues.clone()))
            })
            .collect()
    }

    /// Drops every offset of `group`.
    pub fn remove_group(&self, group: &str) {
        let suffix = format!("@{group}");
        self.inner
            .write()
            .offset_table
            .retain(|k, _| !k.ends_with(&suffix));
        self.dirty.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Drops every offset on `topic`.
    pub fn remove_topic(&self, topic: &str) {
        let prefix = format!("{topic}@");
        self.inner
            .write()
            .offset_table
            .retain(|k, _| !k.starts_with(&prefix));
        self.dirty.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Every committed offset (GET_ALL_CONSUMER_OFFSET body, the file's layout).
    pub fn snapshot_json(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.inner.read()).expect("offsets serialise to JSON")
    }

    /// A slave takes its master's offsets (a GET_ALL_CONSUMER_OFFSET body): the master's
    /// entries replace its own, so after a failover consumers resume where they were.
    pub fn sync_from_master(&self, body: &[u8]) -> Result<(), MetadataError> {
        let master: ConsumerOffsetFile =
            rocketmq_common::json::from_slice_lenient(body).map_err(|source| {
                MetadataError::Parse {
                    path: self.path.clone(),
                    source,
                }
            })?;
        let mut inner = self.inner.write();
        for (key, queues) in master.offset_table {
            if inner.offset_table.get(&key) != Some(&queues) {
                inner.offset_table.insert(key, queues);
                self.dirty.store(true, std::sync::atomic::Ordering::Release);
            }
        }
        Ok(())
    }

    /// Writes the file if anything changed since the last flush.
    pub fn flush(&self) -> Result<(), MetadataError> {
        let _serial = self.flush_lock.lock();
        if !self.dirty.swap(false, std::sync::atomic::Ordering::AcqRel) {
            return Ok(());
        }
        let snapshot = self.inner.read().clone();
        if let Err(e) = save_json(&self.path, &snapshot) {
            self.dirty.store(true, std::sync::atomic::Ordering::Release);
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_persist_and_bump_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/topics.json");
        let m = TopicConfigManager::load(path.clone(), "C", "b", true, 8, true).unwrap();
        assert!(m.get(AUTO_CREATE_TOPIC_KEY_TOPIC).is_some());
        let v0 = m.data_version();
        assert!(m.upsert(TopicConfig::new("T", 4)).unwrap());
        assert!(
            !m.upsert(TopicConfig::new("T", 4)).unwrap(),
            "unchanged upsert is a no-op"
        );
        assert!(m.data_version().counter > v0.counter);
        let (_, created) = m.get_or_create(TopicConfig::new("U", 2)).unwrap();
        assert!(created);
        let m = TopicConfigManager::load(path, "C", "b", true, 8, true).unwrap();
        assert_eq!(m.get("T").unwrap().write_queue_nums, 4);
        assert!(m.get("U").is_some());
        assert!(m.delete("T").unwrap());
        assert!(m.get("T").is_none());
    }

    #[test]
    fn offsets_flush_and_reload_including_java_bare_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumerOffset.json");
        let m = ConsumerOffsetManager::load(path.clone()).unwrap();
        m.commit("G", "T", 0, 10);
        m.commit("G", "T", 3, 7);
        m.flush().unwrap();
        let m = ConsumerOffsetManager::load(path.clone()).unwrap();
        assert_eq!(m.query("G", "T", 3), Some(7));
        assert_eq!(m.query("G", "T", 1), None);
        assert_eq!(m.topics_of_group("G"), vec!["T".to_string()]);

        std::fs::write(&path, r#"{"offsetTable":{"T@G":{0:42,1:5}}}"#).unwrap();
        let m = ConsumerOffsetManager::load(path).unwrap();
        assert_eq!(m.query("G", "T", 0), Some(42));
    }

    #[test]
    fn groups_auto_create_only_when_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let m = SubscriptionGroupManager::load(dir.path().join("subscriptionGroup.json")).unwrap();
        assert!(m.get_or_create("G", false).unwrap().is_none());
        assert_eq!(
            m.get_or_create("G", true).unwrap().unwrap().retry_max_times,
            16
        );
        let m = SubscriptionGroupManager::load(dir.path().join("subscriptionGroup.json")).unwrap();
        assert!(m.get("G").is_some());
        assert!(m.delete("G").unwrap());
    }

    #[test]
    fn corrupt_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics.json");
        std::fs::write(&path, "{broken").unwrap();
        let err = TopicConfigManager::load(path, "C", "b", true, 8, true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("topics.json"), "{err}");
    }
}
