//! Shared token buckets.

use crate::{client, client_in, namespace, redis_url};

#[tokio::test]
async fn two_clients_share_one_bucket() {
    let Some(url) = redis_url() else { return };
    // Two clients in one namespace: two nodes.
    let ns = namespace();
    let (a, b) = (client_in(&url, &ns), client_in(&url, &ns));
    // 1 token per second, burst 10: twenty takes in a row, alternating nodes, get 10.
    let mut allowed = 0;
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        let taken = node.take(7, "evaluation", 1, 10).await.unwrap();
        if taken.allowed {
            allowed += 1;
        } else {
            assert!(taken.retry_after > std::time::Duration::ZERO);
            assert!(taken.retry_after <= std::time::Duration::from_secs(1));
        }
    }
    // 10, or 11 if the loop took over a second (one more token refilled).
    assert!((10..=11).contains(&allowed), "{allowed} of 20");
    // Other projects and classes have their own buckets.
    assert!(a.take(8, "evaluation", 1, 10).await.unwrap().allowed);
    assert!(a.take(7, "capture", 1, 10).await.unwrap().allowed);
}

#[tokio::test]
async fn buckets_refill_at_their_rate() {
    let Some(url) = redis_url() else { return };
    let a = client(&url);
    // 1 per second (slow enough that a loaded machine does not refill mid-test).
    for _ in 0..5 {
        assert!(a.take(1, "capture", 1, 5).await.unwrap().allowed);
    }
    let refused = a.take(1, "capture", 1, 5).await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after <= std::time::Duration::from_secs(1));
    tokio::time::sleep(refused.retry_after + std::time::Duration::from_millis(5)).await;
    assert!(a.take(1, "capture", 1, 5).await.unwrap().allowed);
}
