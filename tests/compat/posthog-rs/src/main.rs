//! Writes the small GeoIP City database `scripts/compat.sh` starts `vexil serve --geoip-db` with:
//! 5.9.0.0/16 in Berlin, Germany; 90.0.0.0/8 in France; nothing else.
//!
//! Usage: `write-test-geoip PATH`

use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: write-test-geoip PATH")?;
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.database_type = "GeoLite2-City".to_owned();
    db.metadata.languages = vec!["en".to_owned()];
    db.metadata.binary_format_major_version = 2;
    let germany = db.insert_value(json!({
        "city": {"names": {"en": "Berlin"}},
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "country": {"iso_code": "DE", "names": {"en": "Germany"}},
        "location": {"time_zone": "Europe/Berlin"},
        "postal": {"code": "10115"},
    }))?;
    let france = db.insert_value(json!({
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "country": {"iso_code": "FR", "names": {"en": "France"}},
    }))?;
    // IPv4 networks live under ::/96 in an IPv6 database.
    db.insert_node("::5.9.0.0/112".parse::<IpAddrWithMask>()?, germany);
    db.insert_node("::90.0.0.0/104".parse::<IpAddrWithMask>()?, france);
    let file = std::fs::File::create(&path)?;
    db.write_to(std::io::BufWriter::new(file))?;
    Ok(())
}
