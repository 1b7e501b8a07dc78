//! A Redis that is not there: calls fail fast (timeout, then the open breaker), and recover
//! when it comes back.

use std::process::Stdio;
use std::time::{Duration, Instant};

use vexil_cache::{CacheError, Redis, RedisConfig};

use crate::redis_url;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_redis(port: u16) -> std::process::Child {
    std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH")
}

async fn wait_up(r: &Redis) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.ping().await.is_err() {
        assert!(Instant::now() < deadline, "Redis did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dead_redis_fails_fast_and_recovery_is_picked_up() {
    // Needs its own server to kill; runs where the shared one does.
    if redis_url().is_none() {
        return;
    }
    let port = free_port();
    let mut config = RedisConfig::new(format!("redis://127.0.0.1:{port}"));
    config.cooldown = Duration::from_millis(200);
    let r = Redis::new(config).unwrap();
    // Nothing listens yet: a failure, then the breaker answers at once.
    assert!(r.take(1, "evaluation", 10, 10).await.is_err());
    assert!(!r.is_available());
    let started = Instant::now();
    assert!(matches!(
        r.take(1, "evaluation", 10, 10).await,
        Err(CacheError::CircuitOpen)
    ));
    assert!(started.elapsed() < Duration::from_millis(20));

    let mut server = start_redis(port);
    tokio::time::sleep(Duration::from_millis(250)).await;
    wait_up(&r).await;
    assert!(r.take(1, "evaluation", 10, 10).await.unwrap().allowed);
    assert!(r.is_available());

    // Killed under a live connection: fails, then recovers on restart.
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(r.take(1, "evaluation", 10, 10).await.is_err());
    let mut server = start_redis(port);
    tokio::time::sleep(Duration::from_millis(250)).await;
    wait_up(&r).await;
    assert!(r.take(1, "evaluation", 10, 10).await.unwrap().allowed);
    server.kill().unwrap();
    server.wait().unwrap();
}
