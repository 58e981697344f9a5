//! Feeds arbitrary bytes to the Remoting frame decoder, in arbitrary chunks.
//!
//! Properties: the decoder never panics; a frame it accepts re-encodes (in either header
//! encoding) to bytes it decodes to the same command.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rocketmq_common::protocol::codec::RemotingCodec;
use rocketmq_common::protocol::SerializeType;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk.max(1));
    let mut codec = RemotingCodec::new(1 << 20, SerializeType::Json);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(cmd)) => {
                    for st in [SerializeType::Json, SerializeType::RocketMq] {
                        let encoded = RemotingCodec::new(1 << 24, st).encode_to_bytes(&cmd);
                        let back = RemotingCodec::new(1 << 24, st)
                            .decode(&mut BytesMut::from(encoded.as_ref()))
                            .expect("re-encoded frame decodes")
                            .expect("re-encoded frame is complete");
                        // The binary header carries code and version as i16, like Java.
                        if st == SerializeType::Json {
                            assert_eq!(back, cmd);
                        } else {
                            assert_eq!(back.ext_fields.unwrap_or_default(), cmd.ext_fields.clone().unwrap_or_default());
                            assert_eq!(back.body, cmd.body);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
