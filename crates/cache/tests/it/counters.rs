//! Shared behavioural counters: ready generations, rebuilds, bounded series.

use std::time::Duration;

use vexil_cache::{CounterHit, CounterRead};

use crate::{client, redis_url};

fn hit<'a>(track: &'a str, id: &'a str, bucket: i64) -> CounterHit<'a> {
    CounterHit {
        track,
        distinct_id: id,
        bucket,
        count: 1,
        oldest: bucket - 360,
        max_buckets: 361,
        ttl_seconds: 3_610,
    }
}

fn read(track: &str, since: i64) -> CounterRead<'_> {
    CounterRead { track, since }
}

#[tokio::test]
async fn counts_are_unknown_until_rebuilt_then_summed_over_ids() {
    let Some(url) = redis_url() else { return };
    let r = client(&url);
    let t = "purchase/10";
    assert_eq!(r.read(1, &["a"], &[read(t, 0)]).await.unwrap(), vec![None]);
    assert_eq!(r.ready(1, &[t]).await.unwrap(), vec![false]);
    // No generation: a live hit is dropped (the rebuild counts it from the stored events).
    r.record(1, &[hit(t, "a", 100)], false).await.unwrap();

    let rebuild = r
        .begin_rebuild(1, &[t], Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    // Another node cannot rebuild meanwhile.
    assert!(r
        .begin_rebuild(1, &[t], Duration::from_secs(10))
        .await
        .unwrap()
        .is_none());
    // The replay, and a live event from another node, both land in the new generation.
    r.record(
        1,
        &[hit(t, "a", 100), hit(t, "a", 100), hit(t, "b", 90)],
        true,
    )
    .await
    .unwrap();
    r.record(1, &[hit(t, "a", 101)], false).await.unwrap();
    assert_eq!(r.read(1, &["a"], &[read(t, 0)]).await.unwrap(), vec![None]);
    assert!(r.finish_rebuild(rebuild).await.unwrap());
    assert_eq!(r.ready(1, &[t]).await.unwrap(), vec![true]);
    assert_eq!(
        r.read(
            1,
            &["a", "b"],
            &[read(t, 0), read(t, 100), read(t, 101), read("other", 0)]
        )
        .await
        .unwrap(),
        vec![Some(4), Some(3), Some(1), None]
    );
    assert_eq!(
        r.read(1, &["nobody"], &[read(t, 0)]).await.unwrap(),
        vec![Some(0)]
    );
    // Other projects are apart.
    assert_eq!(r.read(2, &["a"], &[read(t, 0)]).await.unwrap(), vec![None]);
}

#[tokio::test]
async fn a_rebuild_replaces_the_ready_generation_whole() {
    let Some(url) = redis_url() else { return };
    let r = client(&url);
    let t = "signup/60";
    let first = r
        .begin_rebuild(5, &[t], Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    r.record(5, &[hit(t, "a", 10), hit(t, "a", 11)], true)
        .await
        .unwrap();
    assert!(r.finish_rebuild(first).await.unwrap());
    assert_eq!(
        r.read(5, &["a"], &[read(t, 0)]).await.unwrap(),
        vec![Some(2)]
    );
    // Invalidated (a node missed events): unknown until rebuilt; the replay of the same
    // stored events (plus the missed one) counts each once.
    r.invalidate(5).await.unwrap();
    assert_eq!(r.read(5, &["a"], &[read(t, 0)]).await.unwrap(), vec![None]);
    let second = r
        .begin_rebuild(5, &[t], Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    r.record(
        5,
        &[hit(t, "a", 10), hit(t, "a", 11), hit(t, "a", 12)],
        true,
    )
    .await
    .unwrap();
    assert!(r.finish_rebuild(second).await.unwrap());
    assert_eq!(
        r.read(5, &["a"], &[read(t, 0)]).await.unwrap(),
        vec![Some(3)]
    );
}

#[tokio::test]
async fn a_lost_lease_does_not_publish() {
    let Some(url) = redis_url() else { return };
    let r = client(&url);
    let t = "x/10";
    let slow = r
        .begin_rebuild(3, &[t], Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let other = r
        .begin_rebuild(3, &[t], Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert!(!r.finish_rebuild(slow).await.unwrap());
    assert!(r.finish_rebuild(other).await.unwrap());
}

#[tokio::test]
async fn series_keep_a_bounded_number_of_buckets() {
    let Some(url) = redis_url() else { return };
    let r = client(&url);
    let t = "view/10";
    let rebuild = r
        .begin_rebuild(4, &[t], Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert!(r.finish_rebuild(rebuild).await.unwrap());
    // 2,000 buckets written one batch after the other (each batch at the time of its last
    // bucket): only the last 361 stay.
    for chunk in (0..2_000i64).collect::<Vec<_>>().chunks(100) {
        let now = chunk[chunk.len() - 1];
        let hits: Vec<CounterHit<'_>> = chunk
            .iter()
            .map(|b| CounterHit {
                oldest: now - 360,
                ..hit(t, "a", *b)
            })
            .collect();
        r.record(4, &hits, false).await.unwrap();
    }
    assert_eq!(
        r.read(4, &["a"], &[read(t, 0)]).await.unwrap(),
        vec![Some(361)]
    );
    let (series, bytes) = r.counter_memory(4).await.unwrap();
    assert_eq!(series, 1);
    assert!(bytes > 0 && bytes < 64 * 1024, "{bytes}");
}
