//! Where a message is stored: its own queue, or a system queue it waits in until due — a
//! delay level parks it in `SCHEDULE_TOPIC_XXXX`, a timer property (`TIMER_DELAY_SEC`,
//! `TIMER_DELAY_MS`, `TIMER_DELIVER_MS`, or the older `__STARTDELIVERTIME` of ONS-style
//! clients) in `rmq_sys_wheel_timer`. Sends and transaction
//! commits route through [`route`], so a delayed message is delayed whichever way it
//! arrives; re-puts of due messages bypass it.

use std::time::{SystemTime, UNIX_EPOCH};

use rocketmq_common::message::get_property;
use rocketmq_common::message::keys::{
    REAL_QUEUE_ID, REAL_TOPIC, START_DELIVER_TIME, TIMER_DEL_UNIQKEY, TIMER_DELAY_MS,
    TIMER_DELAY_SEC, TIMER_DELIVER_MS, TIMER_OUT_MS,
};
use rocketmq_common::message::rewrite_properties;
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::remoting::ProcessError;
use rocketmq_common::topic::{SCHEDULE_TOPIC, TIMER_TOPIC};

use crate::processor::BrokerContext;
use crate::schedule::{DelayLevels, delay_rewrite, requested_delay_level};
use crate::timer::TimerConfig;

/// The queue a message goes to and the properties it is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Topic to append to.
    pub topic: String,
    /// Queue to append to.
    pub queue_id: i32,
    /// Properties to store (carrying the real destination when parked).
    pub properties: String,
    /// Whether the message waits in a system queue before it becomes visible.
    pub delayed: bool,
}

/// The timer properties a client may set, in precedence order. Java's broker only counts
/// `__STARTDELIVERTIME` (an absolute time in ms) as a delay message in its metrics and
/// delivers it at once; a client that sets it wants it delivered then, so it is honoured
/// like `TIMER_DELIVER_MS`.
const TIMER_REQUESTS: [&str; 4] = [
    TIMER_DELAY_SEC,
    TIMER_DELAY_MS,
    TIMER_DELIVER_MS,
    START_DELIVER_TIME,
];

/// Whether `properties` ask for a delay level or a timer.
pub fn wants_delay(properties: &str) -> bool {
    requested_delay_level(properties) > 0
        || (get_property(properties, TIMER_OUT_MS).is_none()
            && TIMER_REQUESTS
                .iter()
                .any(|k| get_property(properties, k).is_some()))
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Routes a message for `topic`/`queue_id` with `properties` (see the module docs).
pub fn route(
    ctx: &BrokerContext,
    topic: &str,
    queue_id: i32,
    properties: &str,
) -> Result<Route, ProcessError> {
    route_with(
        ctx.schedule.levels(),
        &ctx.config.timer,
        now_millis(),
        topic,
        queue_id,
        properties,
    )
}

fn timer_illegal(timer: &TimerConfig) -> ProcessError {
    ProcessError::new(
        ResponseCode::MessageIllegal,
        format!(
            "timer message illegal, the delay time should not be bigger than the max delay {}ms; or if set del msg, the delay time should be bigger than the current time",
            timer.max_delay_sec * 1000
        ),
    )
}

/// [`route`] with its inputs explicit (tests).
pub fn route_with(
    levels: &DelayLevels,
    timer: &TimerConfig,
    now: i64,
    topic: &str,
    queue_id: i32,
    properties: &str,
) -> Result<Route, ProcessError> {
    let direct = |properties: String| Route {
        topic: topic.to_string(),
        queue_id,
        properties,
        delayed: false,
    };
    let level = requested_delay_level(properties);
    if level > 0 {
        // A delay level wins over timer properties, which are dropped (as in Java).
        let props = rewrite_properties(properties, &[], &TIMER_REQUESTS);
        let (queue, props) = delay_rewrite(levels, level, topic, queue_id, &props);
        return Ok(Route {
            topic: SCHEDULE_TOPIC.to_string(),
            queue_id: queue,
            properties: props,
            delayed: true,
        });
    }
    if get_property(properties, TIMER_OUT_MS).is_some()
        || !TIMER_REQUESTS
            .iter()
            .any(|k| get_property(properties, k).is_some())
    {
        return Ok(direct(properties.to_string()));
    }
    if !timer.enable {
        return Err(ProcessError::new(
            ResponseCode::SystemError,
            format!(
                "accurate timer message is not enabled, timerWheelEnable is {}",
                timer.enable
            ),
        ));
    }
    let parse = |k: &str| {
        get_property(properties, k)
            .map(|v| v.trim().parse::<i64>().map_err(|_| timer_illegal(timer)))
    };
    let deliver_ms = if let Some(sec) = parse(TIMER_DELAY_SEC) {
        now.saturating_add(sec?.saturating_mul(1000))
    } else if let Some(ms) = parse(TIMER_DELAY_MS) {
        now.saturating_add(ms?)
    } else if let Some(at) = parse(TIMER_DELIVER_MS) {
        at?
    } else if let Some(at) = parse(START_DELIVER_TIME) {
        at?
    } else {
        unreachable!("one of the timer properties is present")
    };
    if deliver_ms <= now {
        // Already due: stored straight in its queue, as Java does. A delete marker for a
        // past time has nothing to cancel.
        if get_property(properties, TIMER_DEL_UNIQKEY).is_some() {
            return Err(timer_illegal(timer));
        }
        return Ok(direct(properties.to_string()));
    }
    if deliver_ms - now > timer.max_delay_sec.saturating_mul(1000) {
        return Err(timer_illegal(timer));
    }
    let slot = timer.slot_of(deliver_ms).to_string();
    let queue = queue_id.to_string();
    let props = rewrite_properties(
        properties,
        &[
            (TIMER_OUT_MS, &slot),
            (REAL_TOPIC, topic),
            (REAL_QUEUE_ID, &queue),
        ],
        &[],
    );
    Ok(Route {
        topic: TIMER_TOPIC.to_string(),
        queue_id: 0,
        properties: props,
        delayed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_common::message::encode_properties;

    fn levels() -> DelayLevels {
        DelayLevels::parse("1s 5s 10s").unwrap()
    }

    fn route(props: &[(&str, &str)]) -> Result<Route, ProcessError> {
        route_with(
            &levels(),
            &TimerConfig::default(),
            1_000_000,
            "T",
            3,
            &encode_properties(props.iter().copied()),
        )
    }

    #[test]
    fn plain_messages_go_straight_to_their_queue() {
        let r = route(&[("TAGS", "a")]).unwrap();
        assert_eq!((r.topic.as_str(), r.queue_id, r.delayed), ("T", 3, false));
    }

    #[test]
    fn delay_levels_win_over_timers() {
        let r = route(&[("DELAY", "2"), (TIMER_DELAY_SEC, "100")]).unwrap();
        assert_eq!((r.topic.as_str(), r.queue_id), (SCHEDULE_TOPIC, 1));
        assert_eq!(get_property(&r.properties, TIMER_DELAY_SEC), None);
        assert_eq!(get_property(&r.properties, REAL_TOPIC), Some("T"));
    }

    #[test]
    fn timer_properties_in_precedence_order() {
        let r = route(&[(TIMER_DELAY_SEC, "10"), (TIMER_DELAY_MS, "999999")]).unwrap();
        assert_eq!((r.topic.as_str(), r.queue_id), (TIMER_TOPIC, 0));
        assert_eq!(
            get_property(&r.properties, TIMER_OUT_MS),
            Some("1009000"),
            "exact multiple: one step earlier, delivered when the slot ends at 1010000"
        );
        assert_eq!(get_property(&r.properties, REAL_QUEUE_ID), Some("3"));
        let r = route(&[(TIMER_DELAY_MS, "1500")]).unwrap();
        assert_eq!(get_property(&r.properties, TIMER_OUT_MS), Some("1001000"));
        let r = route(&[(TIMER_DELIVER_MS, "1002500")]).unwrap();
        assert_eq!(get_property(&r.properties, TIMER_OUT_MS), Some("1002000"));
        let r = route(&[(START_DELIVER_TIME, "1003500")]).unwrap();
        assert_eq!((r.topic.as_str(), r.delayed), (TIMER_TOPIC, true));
        assert_eq!(get_property(&r.properties, TIMER_OUT_MS), Some("1003000"));
        let r = route(&[
            (TIMER_DELIVER_MS, "1002500"),
            (START_DELIVER_TIME, "1009000"),
        ])
        .unwrap();
        assert_eq!(get_property(&r.properties, TIMER_OUT_MS), Some("1002000"));
        assert!(!route(&[(START_DELIVER_TIME, "5")]).unwrap().delayed);
    }

    #[test]
    fn due_or_invalid_timers() {
        let r = route(&[(TIMER_DELIVER_MS, "5")]).unwrap();
        assert!(!r.delayed, "a past time is delivered at once");
        let e = route(&[(TIMER_DELAY_SEC, "abc")]).unwrap_err();
        assert_eq!(e.code, ResponseCode::MessageIllegal);
        let e = route(&[(TIMER_DELAY_SEC, "999999999")]).unwrap_err();
        assert!(e.remark.contains("max delay 259200000ms"), "{}", e.remark);
        let off = TimerConfig {
            enable: false,
            ..TimerConfig::default()
        };
        let e = route_with(
            &levels(),
            &off,
            0,
            "T",
            0,
            &encode_properties([(TIMER_DELAY_SEC, "5")]),
        )
        .unwrap_err();
        assert_eq!(e.code, ResponseCode::SystemError);
        // Already converted messages (TIMER_OUT_MS set) are not converted again.
        let r = route(&[(TIMER_DELAY_SEC, "10"), (TIMER_OUT_MS, "1")]).unwrap();
        assert!(!r.delayed);
    }
}
