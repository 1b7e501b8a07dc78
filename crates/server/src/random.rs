//! Cheap per-thread randomness for ids and sampling: a SplitMix64 stream per thread, seeded
//! once from the OS. Unique and well spread, not unpredictable — never for secrets.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
}

/// The next 64 random bits of this thread's stream.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A random (v4) UUID: request ids need to be unique, not unpredictable, and `Uuid::new_v4`
/// costs a `getrandom` system call per request.
pub(crate) fn fast_v4() -> uuid::Uuid {
    let bytes = (u128::from(next_u64()) << 64 | u128::from(next_u64())).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
