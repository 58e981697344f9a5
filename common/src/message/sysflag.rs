//! `MessageSysFlag` bits carried in the record's SYSFLAG field and the send header `f`.

/// Body is compressed (compression type in [`COMPRESSION_TYPE_MASK`]).
pub const COMPRESSED: i32 = 0x1;
/// The message carries several tags.
pub const MULTI_TAGS: i32 = 0x2;
/// Transaction state: not a transactional message.
pub const TRANSACTION_NOT_TYPE: i32 = 0;
/// Transaction state: half (prepared) message, not visible to consumers.
pub const TRANSACTION_PREPARED_TYPE: i32 = 0x1 << 2;
/// Transaction state: commit.
pub const TRANSACTION_COMMIT_TYPE: i32 = 0x2 << 2;
/// Transaction state: rollback.
pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0x3 << 2;
/// Mask of the transaction state bits.
pub const TRANSACTION_MASK: i32 = 0x3 << 2;
/// Born host is IPv6 (20-byte address field instead of 8).
pub const BORNHOST_V6: i32 = 0x1 << 4;
/// Store host is IPv6 (20-byte address field instead of 8).
pub const STOREHOST_V6: i32 = 0x1 << 5;
/// Batch needs unwrapping.
pub const NEED_UNWRAP: i32 = 0x1 << 6;
/// Inner batch message.
pub const INNER_BATCH: i32 = 0x1 << 7;
/// Compression type bits (1 LZ4, 2 ZSTD, 3 ZLIB) at bits 8-10.
pub const COMPRESSION_TYPE_MASK: i32 = 0x7 << 8;

/// The transaction state bits of `sys_flag`.
pub fn transaction_value(sys_flag: i32) -> i32 {
    sys_flag & TRANSACTION_MASK
}

/// Prepared and rolled-back messages get no ConsumeQueue entry and queue offset 0.
pub fn is_invisible_transaction(sys_flag: i32) -> bool {
    matches!(
        transaction_value(sys_flag),
        TRANSACTION_PREPARED_TYPE | TRANSACTION_ROLLBACK_TYPE
    )
}
