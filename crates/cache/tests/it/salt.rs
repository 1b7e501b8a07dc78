//! Cookieless daily salts: the first node's candidate wins, every node reads it.

use std::time::Duration;

use crate::{client_in, namespace, redis_url};

#[tokio::test]
async fn the_first_salt_of_a_day_is_every_nodes() {
    let Some(url) = redis_url() else { return };
    let ns = namespace();
    let (a, b) = (client_in(&url, &ns), client_in(&url, &ns));
    let ttl = Duration::from_secs(60);
    let first = a.daily_salt("2026-12-01", "AAAA", ttl).await.unwrap();
    assert_eq!(first, "AAAA");
    // Another node, another candidate: the stored salt.
    assert_eq!(
        b.daily_salt("2026-12-01", "BBBB", ttl).await.unwrap(),
        "AAAA"
    );
    // Another day: its own salt.
    assert_eq!(
        b.daily_salt("2026-12-02", "CCCC", ttl).await.unwrap(),
        "CCCC"
    );
    assert_eq!(
        a.daily_salt("2026-12-02", "DDDD", ttl).await.unwrap(),
        "CCCC"
    );
}
