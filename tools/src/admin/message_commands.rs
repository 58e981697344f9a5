//! Commands that read or write messages through the ordinary client paths (PULL_MESSAGE,
//! SEND_MESSAGE_V2), as Java's tools do: `queryMsgByOffset`, `printMsg`, `sendMessage` and
//! `consumeMessage`. None of them commits a consumer offset.

use std::io::Write;

use std::net::Ipv4Addr;

use rocketmq_common::message::{UniqIdGenerator, encode_properties};
use rocketmq_common::protocol::headers::broker::SendMessageRequestHeader;
use rocketmq_common::route::TopicRouteData;

use super::cli::{ConsumeMessageArgs, PrintMsgArgs, QueryMsgByOffsetArgs, SendMessageArgs};
use super::commands::message_details;
use super::error::AdminError;
use super::format::parse_time_arg;
use rocketmq_client::api::{
    AUTO_CREATE_TOPIC_KEY, MqClient, PullQueue, PullStatus, select_broker_addr,
};
use rocketmq_client::message::{ReadableBody, StoredMessage};

/// Group Java's tools pull with.
const TOOLS_CONSUMER: &str = "TOOLS_CONSUMER";
/// Messages per pull.
const PULL_BATCH: i32 = 32;

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn time_arg(raw: Option<&str>, what: &'static str) -> Result<Option<i64>, AdminError> {
    raw.map(|r| parse_time_arg(r, now_millis()))
        .transpose()
        .map_err(|detail| AdminError::InvalidArgument { what, detail })
}

/// Every readable queue of a topic: (broker name, address, queue id).
fn queues(route: &TopicRouteData, broker: Option<&str>) -> Vec<(String, String, i32)> {
    let mut out = Vec::new();
    for q in &route.queue_datas {
        if broker.is_some_and(|b| b != q.broker_name) {
            continue;
        }
        let Some(addr) = route
            .broker_datas
            .iter()
            .find(|d| d.broker_name == q.broker_name)
            .and_then(select_broker_addr)
        else {
            continue;
        };
        for id in 0..q.read_queue_nums {
            out.push((q.broker_name.clone(), addr.to_string(), id));
        }
    }
    out.sort();
    out
}

fn mq_text(topic: &str, broker: &str, queue: i32) -> String {
    format!("MessageQueue [topic={topic}, brokerName={broker}, queueId={queue}]")
}

/// One message as `printMsg`/`consumeMessage` show it (`MSGID: id MessageExt BODY: body`).
pub fn message_line(m: &StoredMessage, print_body: bool) -> String {
    let properties: Vec<String> = m
        .properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let body = if !print_body {
        "NOT PRINT BODY".to_string()
    } else {
        match m.readable_body() {
            ReadableBody::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            ReadableBody::Undecoded { compression } => {
                format!("({} bytes compressed with {compression})", m.body.len())
            }
        }
    };
    format!(
        "MSGID: {} MessageExt [queueId={}, storeSize={}, queueOffset={}, sysFlag={}, bornTimestamp={}, bornHost={}, storeTimestamp={}, storeHost={}, msgId={}, commitLogOffset={}, reconsumeTimes={}, topic={}, flag={}, properties={{{}}}] BODY: {body}\n",
        m.msg_id(),
        m.queue_id,
        m.body.len(),
        m.queue_offset,
        m.sys_flag,
        m.born_timestamp,
        m.born_host,
        m.store_timestamp,
        m.store_host,
        m.offset_msg_id(),
        m.commit_log_offset,
        m.reconsume_times,
        m.topic,
        m.flag,
        properties.join(", ")
    )
}

/// `queryMsgByOffset`.
pub async fn query_msg_by_offset(
    client: &MqClient,
    a: &QueryMsgByOffsetArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let topic = a.topic.trim();
    let route = client.topic_route(topic).await?;
    let addr = route
        .broker_datas
        .iter()
        .find(|d| d.broker_name == a.broker_name.trim())
        .and_then(select_broker_addr)
        .ok_or_else(|| AdminError::InvalidArgument {
            what: "brokerName (-b)",
            detail: format!("{} serves no queue of {topic}", a.broker_name.trim()),
        })?;
    let queue = PullQueue {
        group: TOOLS_CONSUMER,
        topic,
        queue_id: a.queue_id,
    };
    let batch = client.pull(addr, &queue, a.offset, 1, "*").await?;
    match batch.messages.first() {
        Some(m) if batch.status == PullStatus::Found => write!(out, "{}", message_details(m))?,
        _ => writeln!(
            out,
            "no message at offset {} of {} ({})",
            a.offset,
            mq_text(topic, a.broker_name.trim(), a.queue_id),
            batch.status.name()
        )?,
    }
    Ok(())
}

/// How `printMsg`/`consumeMessage` walk a topic's queues.
struct Walk<'a> {
    group: &'a str,
    topic: &'a str,
    expression: &'a str,
    /// Start at the first message stored at or after this time.
    begin: Option<i64>,
    /// Stop before the first message stored at or after this time.
    end: Option<i64>,
    /// Start at this offset instead (one queue).
    start_offset: Option<i64>,
    /// Most messages to print.
    limit: u64,
    print_body: bool,
}

impl Walk<'_> {
    /// Prints each message of `queues` from its start (or `begin`) to its end (or `end`);
    /// returns how many were printed.
    async fn run(
        &self,
        client: &MqClient,
        queues: &[(String, String, i32)],
        out: &mut dyn Write,
    ) -> Result<u64, AdminError> {
        let topic = self.topic;
        let mut printed = 0u64;
        for (broker, addr, queue) in queues {
            let mut offset = match (self.start_offset, self.begin) {
                (Some(o), _) => o,
                (None, Some(t)) => client.search_offset(addr, topic, *queue, t).await?,
                (None, None) => client.queue_offset(addr, topic, *queue, false).await?,
            };
            let stop = match self.end {
                Some(t) => client.search_offset(addr, topic, *queue, t).await?,
                None => client.queue_offset(addr, topic, *queue, true).await?,
            };
            let mq = mq_text(topic, broker, *queue);
            writeln!(out, "minOffset={offset}, maxOffset={stop}, {mq}")?;
            let target = PullQueue {
                group: self.group,
                topic,
                queue_id: *queue,
            };
            while offset < stop && printed < self.limit {
                let batch = client
                    .pull(addr, &target, offset, PULL_BATCH, self.expression)
                    .await?;
                let status = batch.status.name();
                match batch.status {
                    PullStatus::Found => {
                        for m in &batch.messages {
                            if m.queue_offset >= stop || printed >= self.limit {
                                break;
                            }
                            write!(out, "{}", message_line(m, self.print_body))?;
                            printed += 1;
                        }
                    }
                    PullStatus::NoMatchedMsg => {
                        writeln!(out, "{mq} no matched msg. status={status}, offset={offset}")?;
                    }
                    PullStatus::NoNewMsg | PullStatus::OffsetIllegal => {
                        writeln!(
                            out,
                            "{mq} print msg finished. status={status}, offset={offset}"
                        )?;
                        break;
                    }
                }
                if batch.next_begin_offset <= offset {
                    break;
                }
                offset = batch.next_begin_offset;
            }
            writeln!(
                out,
                "--------------------------------------------------------"
            )?;
            if printed >= self.limit {
                break;
            }
        }
        Ok(printed)
    }
}

fn check_charset(charset: &str) -> Result<(), AdminError> {
    if charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("UTF8") {
        Ok(())
    } else {
        Err(AdminError::InvalidArgument {
            what: "charset",
            detail: format!("{charset} is not supported; bodies are shown as UTF-8"),
        })
    }
}

/// `printMsg`.
pub async fn print_msg(
    client: &MqClient,
    a: &PrintMsgArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    check_charset(&a.charset)?;
    let topic = a.topic.trim();
    let route = client.topic_route(topic).await?;
    let begin = time_arg(a.begin.as_deref(), "begin time (-b)")?;
    let end = time_arg(a.end.as_deref(), "end time (-e)")?;
    Walk {
        group: TOOLS_CONSUMER,
        topic,
        expression: &a.sub_expression,
        begin,
        end,
        start_offset: None,
        limit: u64::MAX,
        print_body: a.print_body,
    }
    .run(client, &queues(&route, None), out)
    .await?;
    Ok(())
}

/// `consumeMessage`: like `printMsg`, bounded by a message count, always with bodies.
pub async fn consume_message(
    client: &MqClient,
    a: &ConsumeMessageArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if a.queue_id.is_some() && a.broker_name.is_none() {
        return Err(AdminError::InvalidArgument {
            what: "queueId (-i)",
            detail: "needs the broker name (-b)".into(),
        });
    }
    if a.offset.is_some() && a.queue_id.is_none() {
        return Err(AdminError::InvalidArgument {
            what: "offset (-o)",
            detail: "needs the queue id (-i)".into(),
        });
    }
    let topic = a.topic.trim();
    let route = client.topic_route(topic).await?;
    let mut targets = queues(&route, a.broker_name.as_deref().map(str::trim));
    if let Some(q) = a.queue_id {
        targets.retain(|(_, _, id)| *id == q);
    }
    let begin = time_arg(a.begin.as_deref(), "begin time (-s)")?;
    let end = time_arg(a.end.as_deref(), "end time (-e)")?;
    writeln!(
        out,
        "The older {} message of the {} queue will be provided",
        a.message_number,
        targets.len()
    )?;
    let printed = Walk {
        group: a.consumer_group.trim(),
        topic,
        expression: "*",
        begin,
        end,
        start_offset: a.offset,
        limit: a.message_number,
        print_body: true,
    }
    .run(client, &targets, out)
    .await?;
    writeln!(out, "Consume ok, {printed} messages")?;
    Ok(())
}

/// `sendMessage`.
pub async fn send_message(
    client: &MqClient,
    a: &SendMessageArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if a.qid.is_some() && a.broker.is_none() && a.broker_addr.is_none() {
        return Err(AdminError::InvalidArgument {
            what: "qid (-i)",
            detail: "Broker name must be set if the queue is chosen!".into(),
        });
    }
    let topic = a.topic.trim();
    let (broker, addr, queue_nums) = match &a.broker_addr {
        Some(addr) => (
            a.broker.clone().unwrap_or_else(|| addr.clone()),
            addr.clone(),
            a.qid.map_or(1, |q| q + 1),
        ),
        None => writable_master(client, topic, a.broker.as_deref()).await?,
    };
    let queue_id = a
        .qid
        .unwrap_or((now_millis() as i32).rem_euclid(queue_nums.max(1)));
    let uniq = UniqIdGenerator::new(Ipv4Addr::LOCALHOST, now_millis() as u32).next(now_millis());
    let mut props = vec![("UNIQ_KEY", uniq.as_str()), ("WAIT", "true")];
    if let Some(k) = &a.key {
        props.push(("KEYS", k.as_str()));
    }
    if let Some(t) = &a.tags {
        props.push(("TAGS", t.as_str()));
    }
    let header = SendMessageRequestHeader {
        producer_group: now_millis().to_string(),
        topic: topic.to_string(),
        default_topic: AUTO_CREATE_TOPIC_KEY.to_string(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: now_millis(),
        flag: 0,
        properties: Some(encode_properties(props)),
        ..Default::default()
    };
    let response = client
        .send_message(&addr, header, a.body.clone().into_bytes())
        .await?;
    let (name, qid, result) = ("#Broker Name", "#QID", "#Send Result");
    writeln!(out, "{name:<32}  {qid:<4}  {result:<20}    #MsgId")?;
    writeln!(
        out,
        "{broker:<32}  {:<4}  {:<20}    {uniq}",
        response.queue_id, "SEND_OK"
    )?;
    Ok(())
}

/// The first master (name, address, write queues) that takes writes for `topic`,
/// optionally only of broker group `broker`.
async fn writable_master(
    client: &MqClient,
    topic: &str,
    broker: Option<&str>,
) -> Result<(String, String, i32), AdminError> {
    let route = client.topic_route(topic).await?;
    let writable: Vec<(String, String, i32)> = route
        .queue_datas
        .iter()
        .filter(|q| q.perm & rocketmq_common::route::PERM_WRITE != 0)
        .filter(|q| broker.is_none_or(|b| b.trim() == q.broker_name))
        .filter_map(|q| {
            let addr = route
                .broker_datas
                .iter()
                .find(|d| d.broker_name == q.broker_name)
                .and_then(|d| d.broker_addrs.get(&rocketmq_common::route::MASTER_ID))?;
            Some((q.broker_name.clone(), addr.clone(), q.write_queue_nums))
        })
        .collect();
    writable
        .first()
        .cloned()
        .ok_or_else(|| AdminError::InvalidArgument {
            what: "topic",
            detail: format!("no writable master serves {topic}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_testkit::stored_record as record;

    #[test]
    fn message_lines_carry_id_fields_and_body() {
        let m = StoredMessage::decode(&record("T", 3, 7, 1234, &[("UNIQ_KEY", "ABC")], b"hello"))
            .unwrap();
        let line = message_line(&m, true);
        assert!(
            line.starts_with("MSGID: ABC MessageExt [queueId=3, storeSize=5, queueOffset=7"),
            "{line}"
        );
        assert!(line.contains("commitLogOffset=1234"), "{line}");
        assert!(line.ends_with("BODY: hello\n"), "{line}");
        assert!(message_line(&m, false).ends_with("BODY: NOT PRINT BODY\n"));
    }
}
