//! POP consumption calls (POP_MESSAGE, ACK_MESSAGE, BATCH_ACK_MESSAGE,
//! CHANGE_MESSAGE_INVISIBLETIME, NOTIFICATION) and the receipts of popped messages, built
//! the way Java's `MQClientAPIImpl.processPopResponse` builds them.

use std::collections::HashMap;
use std::time::Duration;

use rocketmq_common::pop::{
    BatchAck, BatchAckMessageRequestBody, ExtraInfo, MAX_BATCH_ACK_SPAN, POP_CK, TopicFlag,
    order_count_key, parse_offset_info,
};
use rocketmq_common::protocol::headers::broker::{
    AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader, ChangeInvisibleTimeResponseHeader,
    NotificationRequestHeader, NotificationResponseHeader, PopMessageRequestHeader,
    PopMessageResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};

use crate::api::MqClient;
use crate::error::{ClientError, check_success};
use crate::message::StoredMessage;

/// A popped message with its receipt.
#[derive(Debug, Clone)]
pub struct PoppedMessage {
    /// The message, under the topic the consumer asked for.
    pub message: StoredMessage,
    /// What acks it or changes its invisible time.
    pub receipt: ExtraInfo,
    /// Deliveries before this one (FIFO pops: the broker's count).
    pub reconsume_times: i32,
}

impl PoppedMessage {
    /// The topic the message really sits in (its retry topic once redelivered), which
    /// ACK_MESSAGE and CHANGE_MESSAGE_INVISIBLETIME name.
    pub fn real_topic(&self, group: &str) -> String {
        self.receipt
            .topic_flag
            .real_topic(&self.message.topic, group)
    }
}

/// What a pop returned.
#[derive(Debug, Clone)]
pub struct Popped {
    /// SUCCESS, or POLLING_TIMEOUT / PULL_NOT_FOUND / POLLING_FULL when nothing was found.
    pub code: i32,
    /// The response header (pop time, invisible time, rest).
    pub header: PopMessageResponseHeader,
    /// The messages (empty unless found).
    pub messages: Vec<PoppedMessage>,
}

/// Attaches receipts to the messages of a POP response from its offset-info headers.
pub fn attach_receipts(
    header: &PopMessageResponseHeader,
    broker_name: &str,
    messages: Vec<StoredMessage>,
) -> Result<Vec<PoppedMessage>, ClientError> {
    let bad = |e: rocketmq_common::pop::ExtraInfoError| {
        ClientError::bad_body(broker_name, "pop offset info", e)
    };
    let starts: HashMap<String, String> = header
        .start_offset_info
        .as_deref()
        .map(parse_offset_info)
        .transpose()
        .map_err(bad)?
        .unwrap_or_default()
        .into_iter()
        .collect();
    let counts: HashMap<String, String> = header
        .order_count_info
        .as_deref()
        .map(parse_offset_info)
        .transpose()
        .map_err(bad)?
        .unwrap_or_default()
        .into_iter()
        .collect();
    messages
        .into_iter()
        .map(|message| {
            let receipt = match message.property(POP_CK) {
                Some(ck) => ExtraInfo::parse(ck).map_err(bad)?,
                None => {
                    let flag = TopicFlag::of(&message.topic);
                    let key = format!("{}@{}", flag.as_str(), message.queue_id);
                    let start = starts
                        .get(&key)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(message.queue_offset);
                    ExtraInfo {
                        ck_queue_offset: start,
                        pop_time: header.pop_time,
                        invisible_time: header.invisible_time,
                        revive_qid: header.revive_qid,
                        topic_flag: flag,
                        broker_name: broker_name.to_string(),
                        queue_id: message.queue_id,
                        queue_offset: message.queue_offset,
                        commit_log_offset: None,
                    }
                }
            };
            let flag = receipt.topic_flag.as_str();
            let count = counts
                .get(&format!(
                    "{flag}@{}",
                    order_count_key(message.queue_id, message.queue_offset)
                ))
                .or_else(|| counts.get(&format!("{flag}@{}", message.queue_id)))
                .and_then(|c| c.parse::<i32>().ok())
                .filter(|c| *c > 0);
            let reconsume_times = count.unwrap_or(message.reconsume_times);
            Ok(PoppedMessage {
                message,
                receipt,
                reconsume_times,
            })
        })
        .collect()
}

/// Acks of popped messages, grouped the way BATCH_ACK_MESSAGE carries them.
#[derive(Debug, Default)]
pub struct AckPlan {
    /// One body per broker name, with the indexes (into the receipts given) it acks.
    pub batches: Vec<(BatchAckMessageRequestBody, Vec<usize>)>,
    /// Receipts too far from their checkpoint's start for a batch's bit set: ack each one.
    pub singles: Vec<usize>,
    /// Receipts whose offsets do not belong together (a forged or corrupt receipt).
    pub invalid: Vec<usize>,
}

/// Groups the receipts of messages popped by `group` from `topic` into BATCH_ACK_MESSAGE
/// bodies: one ack group per checkpoint (flag, queue, start offset, pop time, revive
/// queue), one body per broker.
pub fn plan_batch_acks<'a>(
    group: &str,
    topic: &str,
    receipts: impl IntoIterator<Item = (usize, &'a ExtraInfo)>,
) -> AckPlan {
    type Key = (String, i32, i64, i64, i32);
    type Groups = HashMap<Key, (BatchAck, Vec<i64>, Vec<usize>)>;
    let mut plan = AckPlan::default();
    let mut by_broker: HashMap<&str, Groups> = HashMap::new();
    for (i, receipt) in receipts {
        // A message lies at or after its checkpoint's start; one far after it (a filter
        // skipped many) is acked on its own rather than in a huge bit set.
        let span = receipt.queue_offset - receipt.ck_queue_offset;
        if span < 0 {
            plan.invalid.push(i);
            continue;
        }
        if span >= MAX_BATCH_ACK_SPAN as i64 {
            plan.singles.push(i);
            continue;
        }
        let key = (
            receipt.topic_flag.as_str().to_string(),
            receipt.queue_id,
            receipt.ck_queue_offset,
            receipt.pop_time,
            receipt.revive_qid,
        );
        let slot = by_broker
            .entry(receipt.broker_name.as_str())
            .or_default()
            .entry(key)
            .or_insert_with(|| {
                (
                    BatchAck {
                        consumer_group: group.to_string(),
                        topic: topic.to_string(),
                        retry: receipt.topic_flag.as_str().to_string(),
                        start_offset: receipt.ck_queue_offset,
                        queue_id: receipt.queue_id,
                        revive_queue_id: receipt.revive_qid,
                        pop_time: receipt.pop_time,
                        invisible_time: receipt.invisible_time,
                        bit_set: String::new(),
                    },
                    Vec::new(),
                    Vec::new(),
                )
            });
        slot.1.push(receipt.queue_offset);
        slot.2.push(i);
    }
    for (broker_name, groups) in by_broker {
        let mut indexes = Vec::new();
        let acks = groups
            .into_values()
            .map(|(mut ack, offsets, idx)| {
                ack.bit_set = BatchAck::encode_bits(ack.start_offset, &offsets);
                indexes.extend(idx);
                ack
            })
            .collect();
        let body = BatchAckMessageRequestBody {
            broker_name: broker_name.to_string(),
            acks,
        };
        plan.batches.push((body, indexes));
    }
    plan
}

impl MqClient {
    /// POP_MESSAGE (200050) to the broker `broker_name` at `addr`; the request may be held
    /// for its poll time, so the timeout covers that. Not-found outcomes come back with an
    /// empty message list; other error codes are errors.
    pub async fn pop_message(
        &self,
        addr: &str,
        broker_name: &str,
        header: &PopMessageRequestHeader,
    ) -> Result<Popped, ClientError> {
        let request = RemotingCommand::request(RequestCode::POP_MESSAGE, header);
        let timeout = self.timeout() + Duration::from_millis(header.poll_time.max(0) as u64);
        let response = self.remoting().invoke(addr, request, timeout).await?;
        let code = response.code;
        let not_found = [
            ResponseCode::PollingTimeout.as_i32(),
            ResponseCode::PullNotFound.as_i32(),
            ResponseCode::PollingFull.as_i32(),
        ];
        if code != ResponseCode::Success.as_i32() && !not_found.contains(&code) {
            return Err(check_success(addr, response).unwrap_err());
        }
        let h: PopMessageResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "pop response header", e))?;
        let messages = if code == ResponseCode::Success.as_i32() {
            let stored = StoredMessage::decode_all(&response.body)
                .map_err(|e| ClientError::from((addr, e)))?;
            attach_receipts(&h, broker_name, stored)?
        } else {
            Vec::new()
        };
        Ok(Popped {
            code,
            header: h,
            messages,
        })
    }

    /// ACK_MESSAGE (200051) of one popped message.
    pub async fn ack_message(
        &self,
        addr: &str,
        group: &str,
        popped: &PoppedMessage,
    ) -> Result<(), ClientError> {
        self.ack_receipt(addr, group, &popped.message.topic, &popped.receipt)
            .await
    }

    /// ACK_MESSAGE (200051) by receipt; `topic` is the one the consumer popped.
    pub async fn ack_receipt(
        &self,
        addr: &str,
        group: &str,
        topic: &str,
        receipt: &ExtraInfo,
    ) -> Result<(), ClientError> {
        let mut extra = receipt.clone();
        extra.commit_log_offset = None;
        let header = AckMessageRequestHeader {
            consumer_group: group.to_string(),
            topic: receipt.topic_flag.real_topic(topic, group),
            queue_id: receipt.queue_id,
            extra_info: extra.to_string(),
            offset: receipt.queue_offset,
        };
        let request = RemotingCommand::request(RequestCode::ACK_MESSAGE, &header);
        check_success(
            addr,
            self.remoting()
                .invoke(addr, request, self.timeout())
                .await?,
        )
        .map(drop)
    }

    /// BATCH_ACK_MESSAGE (200151).
    pub async fn batch_ack(
        &self,
        addr: &str,
        body: &BatchAckMessageRequestBody,
    ) -> Result<(), ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::BATCH_ACK_MESSAGE)
            .with_body(serde_json::to_vec(body).expect("bodies serialise"));
        check_success(
            addr,
            self.remoting()
                .invoke(addr, request, self.timeout())
                .await?,
        )
        .map(drop)
    }

    /// CHANGE_MESSAGE_INVISIBLETIME (200053): the message becomes visible `invisible_time`
    /// ms from now; returns its new receipt (the old one no longer acks it).
    pub async fn change_invisible_time(
        &self,
        addr: &str,
        group: &str,
        popped: &PoppedMessage,
        invisible_time: i64,
    ) -> Result<ExtraInfo, ClientError> {
        self.change_invisible_receipt(
            addr,
            group,
            &popped.message.topic,
            &popped.receipt,
            invisible_time,
        )
        .await
    }

    /// CHANGE_MESSAGE_INVISIBLETIME (200053) by receipt; `topic` is the one the consumer
    /// popped. The new receipt keeps the old one's CommitLog offset.
    pub async fn change_invisible_receipt(
        &self,
        addr: &str,
        group: &str,
        topic: &str,
        receipt: &ExtraInfo,
        invisible_time: i64,
    ) -> Result<ExtraInfo, ClientError> {
        let mut extra = receipt.clone();
        extra.commit_log_offset = None;
        let header = ChangeInvisibleTimeRequestHeader {
            consumer_group: group.to_string(),
            topic: receipt.topic_flag.real_topic(topic, group),
            queue_id: receipt.queue_id,
            extra_info: extra.to_string(),
            offset: receipt.queue_offset,
            invisible_time,
        };
        let request = RemotingCommand::request(RequestCode::CHANGE_MESSAGE_INVISIBLETIME, &header);
        let response = check_success(
            addr,
            self.remoting()
                .invoke(addr, request, self.timeout())
                .await?,
        )?;
        let h: ChangeInvisibleTimeResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "change invisible time header", e))?;
        let mut new = receipt.clone();
        if !new.is_order() {
            // The broker wrote a one-message checkpoint starting at the message.
            new.ck_queue_offset = receipt.queue_offset;
        }
        new.pop_time = h.pop_time;
        new.invisible_time = h.invisible_time;
        new.revive_qid = h.revive_qid;
        Ok(new)
    }

    /// NOTIFICATION (200054): whether a pop would find messages, held up to the poll time.
    pub async fn notification(
        &self,
        addr: &str,
        header: &NotificationRequestHeader,
    ) -> Result<bool, ClientError> {
        let request = RemotingCommand::request(RequestCode::NOTIFICATION, header);
        let timeout = self.timeout() + Duration::from_millis(header.poll_time.max(0) as u64);
        let response = check_success(addr, self.remoting().invoke(addr, request, timeout).await?)?;
        let h: NotificationResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "notification header", e))?;
        Ok(h.has_msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, queue_id: i32, queue_offset: i64) -> StoredMessage {
        StoredMessage {
            topic: topic.into(),
            queue_id,
            queue_offset,
            commit_log_offset: 0,
            sys_flag: 0,
            flag: 0,
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 0,
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            properties: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn receipts_come_from_the_offset_info_or_the_pop_ck_property() {
        let header = PopMessageResponseHeader {
            pop_time: 1000,
            invisible_time: 60000,
            revive_qid: 2,
            rest_num: 0,
            start_offset_info: Some("0 1 10".into()),
            msg_offset_info: Some("0 1 10,12".into()),
            order_count_info: None,
        };
        let mut retried = message("T", 0, 4);
        retried
            .properties
            .push((POP_CK.into(), "4 1000 60000 2 1 b 0 4".into()));
        let popped = attach_receipts(&header, "b", vec![message("T", 1, 12), retried]).unwrap();
        assert_eq!(popped[0].receipt.to_string(), "10 1000 60000 2 0 b 1 12");
        assert_eq!(popped[1].real_topic("G"), "%RETRY%G_T");
        assert_eq!(popped[0].real_topic("G"), "T");
    }

    #[test]
    fn fifo_counts_become_reconsume_times() {
        let header = PopMessageResponseHeader {
            pop_time: 1000,
            invisible_time: 60000,
            revive_qid: 999,
            rest_num: 0,
            start_offset_info: Some("0 0 3".into()),
            msg_offset_info: Some("0 0 3".into()),
            order_count_info: Some("0 qo0%3 2;0 0 2".into()),
        };
        let popped = attach_receipts(&header, "b", vec![message("T", 0, 3)]).unwrap();
        assert_eq!(popped[0].reconsume_times, 2);
        assert!(popped[0].receipt.is_order());
    }

    fn receipt(broker: &str, queue_id: i32, ck: i64, offset: i64) -> ExtraInfo {
        ExtraInfo {
            ck_queue_offset: ck,
            pop_time: 1_000,
            invisible_time: 60_000,
            revive_qid: 0,
            topic_flag: TopicFlag::Normal,
            broker_name: broker.into(),
            queue_id,
            queue_offset: offset,
            commit_log_offset: None,
        }
    }

    #[test]
    fn batch_acks_group_by_checkpoint_and_broker() {
        let receipts = [
            receipt("a", 0, 10, 10),
            receipt("a", 0, 10, 12),
            receipt("a", 1, 5, 5),
            receipt("b", 0, 0, 3),
            receipt("a", 0, 10, 10 + MAX_BATCH_ACK_SPAN as i64),
            receipt("a", 0, 10, 9),
        ];
        let plan = plan_batch_acks("G", "T", receipts.iter().enumerate());
        assert_eq!(
            plan.singles,
            [4],
            "too far from its checkpoint for a bit set"
        );
        assert_eq!(plan.invalid, [5], "before its checkpoint's start");
        let mut batches = plan.batches;
        batches.sort_by(|x, y| x.0.broker_name.cmp(&y.0.broker_name));
        assert_eq!(batches.len(), 2);
        let (a, a_indexes) = &batches[0];
        assert_eq!(a.broker_name, "a");
        let mut a_indexes = a_indexes.clone();
        a_indexes.sort();
        assert_eq!(a_indexes, [0, 1, 2]);
        let mut acks = a.acks.clone();
        acks.sort_by_key(|k| k.queue_id);
        assert_eq!(acks.len(), 2, "one ack group per checkpoint");
        assert_eq!(
            (acks[0].start_offset, acks[0].consumer_group.as_str()),
            (10, "G")
        );
        assert_eq!(acks[0].bit_set, BatchAck::encode_bits(10, &[10, 12]));
        assert_eq!(acks[1].bit_set, BatchAck::encode_bits(5, &[5]));
        assert_eq!(batches[1].0.broker_name, "b");
        assert_eq!(batches[1].1, [3]);
    }
}
