//! GeoIP enrichment: a small City database built by the test (never downloaded), a flag
//! targeting `$geoip_country_code`, and the rules on whose address counts and whose word wins.

use std::net::IpAddr;
use std::sync::Arc;

use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use serde_json::{json, Value};
use vexil_server::{GeoIp, Settings};

use crate::support::TestApp;

/// A German and a French network, with City records as MaxMind shapes them.
pub fn write_test_db(path: &std::path::Path) {
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.database_type = "GeoLite2-City".to_owned();
    db.metadata.languages = vec!["en".to_owned()];
    db.metadata.binary_format_major_version = 2;
    let germany = db
        .insert_value(json!({
            "city": {"names": {"en": "Berlin", "de": "Berlin"}},
            "continent": {"code": "EU", "names": {"en": "Europe"}},
            "country": {"iso_code": "DE", "names": {"en": "Germany", "de": "Deutschland"}},
            "location": {"time_zone": "Europe/Berlin", "latitude": 52.5},
            "postal": {"code": "10115"},
        }))
        .unwrap();
    let france = db
        .insert_value(json!({
            "continent": {"code": "EU", "names": {"en": "Europe"}},
            "country": {"iso_code": "FR", "names": {"en": "France"}},
        }))
        .unwrap();
    // IPv4 networks live under ::/96 in an IPv6 database.
    db.insert_node("::5.9.0.0/112".parse::<IpAddrWithMask>().unwrap(), germany);
    db.insert_node("::90.0.0.0/104".parse::<IpAddrWithMask>().unwrap(), france);
    let file = std::fs::File::create(path).unwrap();
    db.write_to(std::io::BufWriter::new(file)).unwrap();
}

#[test]
fn the_seven_posthog_properties_come_from_a_city_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    write_test_db(&path);
    let geo = GeoIp::open(&path).unwrap();
    let berlin: IpAddr = "5.9.1.2".parse().unwrap();
    let found: Value = geo
        .lookup(berlin)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(
        found,
        json!({"$geoip_country_name": "Germany", "$geoip_city_name": "Berlin",
               "$geoip_country_code": "DE", "$geoip_continent_name": "Europe",
               "$geoip_continent_code": "EU", "$geoip_postal_code": "10115",
               "$geoip_time_zone": "Europe/Berlin"})
    );
    // A record with fewer fields gives fewer properties; unknown and loopback give none.
    assert_eq!(geo.lookup("90.1.1.1".parse().unwrap()).len(), 4);
    assert!(geo.lookup("8.8.8.8".parse().unwrap()).is_empty());
    assert!(geo.lookup("127.0.0.1".parse().unwrap()).is_empty());
    // Not an MMDB: an error naming the file.
    let bad = dir.path().join("bad.mmdb");
    std::fs::write(&bad, b"nonsense").unwrap();
    assert!(GeoIp::open(&bad)
        .unwrap_err()
        .to_string()
        .contains("bad.mmdb"));
}

async fn in_germany(app: &TestApp, forwarded_for: &str, body: Value) -> Value {
    let mut req = json!({"token": app.token(), "distinct_id": "visitor"});
    req.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    let resp = app
        .client
        .post(app.url("/flags?v=2"))
        .header("x-forwarded-for", forwarded_for)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["flags"]["germany"]["enabled"].clone()
}

async fn spawn(trusted: &[&str]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    write_test_db(&path);
    let settings = Settings {
        geoip: Some(Arc::new(GeoIp::open(&path).unwrap())),
        trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
        ..Settings::default()
    };
    let app = TestApp::spawn_with(settings).await;
    app.put_flag(
        "germany",
        json!({"groups": [{"properties": [{"key": "$geoip_country_code", "value": ["DE"],
                                            "operator": "exact", "type": "person"}],
                           "rollout_percentage": 100}]}),
    )
    .await;
    (app, dir)
}

#[tokio::test]
async fn users_in_germany_are_targeted_by_their_address() {
    // The test client is the proxy (127.0.0.1): trusted, so X-Forwarded-For names the client.
    let (app, _dir) = spawn(&["127.0.0.0/8"]).await;
    assert_eq!(in_germany(&app, "5.9.1.2", json!({})).await, json!(true));
    assert_eq!(in_germany(&app, "90.1.1.1", json!({})).await, json!(false));
    assert_eq!(in_germany(&app, "8.8.8.8", json!({})).await, json!(false));
    // The rightmost untrusted hop counts, not what the client wrote first.
    assert_eq!(
        in_germany(&app, "5.9.1.2, 90.1.1.1", json!({})).await,
        json!(false)
    );
    assert_eq!(
        in_germany(&app, "90.1.1.1, 5.9.1.2", json!({})).await,
        json!(true)
    );
    // The SDK's own value wins; a null one does not count.
    let fr = json!({"person_properties": {"$geoip_country_code": "FR"}});
    assert_eq!(in_germany(&app, "5.9.1.2", fr).await, json!(false));
    let null = json!({"person_properties": {"$geoip_country_code": null}});
    assert_eq!(in_germany(&app, "5.9.1.2", null).await, json!(true));
    // geoip_disable: nothing added.
    let off = json!({"geoip_disable": true});
    assert_eq!(in_germany(&app, "5.9.1.2", off).await, json!(false));
    // posthog-rs spells it `disable_geoip`.
    let off = json!({"disable_geoip": true});
    assert_eq!(in_germany(&app, "5.9.1.2", off).await, json!(false));
    // /decide enriches too.
    let (_, decide) = {
        let resp = app
            .client
            .post(app.url("/decide?v=3"))
            .header("x-forwarded-for", "5.9.1.2")
            .json(&json!({"token": app.token(), "distinct_id": "visitor"}))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(decide["featureFlags"]["germany"], json!(true), "{decide}");
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (app, _dir) = spawn(&["10.0.0.0/8"]).await;
    // The peer (127.0.0.1) is not a trusted proxy: its header is not believed, and loopback
    // has no country.
    assert_eq!(in_germany(&app, "5.9.1.2", json!({})).await, json!(false));
    app.stop().await;
}
