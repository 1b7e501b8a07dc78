//! GeoIP enrichment (`--geoip-db`): PostHog's seven `$geoip_*` person properties from a MaxMind
//! City database (MMDB) for the client's address, added to a `/flags` request's person
//! properties where the request did not supply a non-null value (the SDK's word wins), unless
//! the request says `geoip_disable`. Loopback addresses and addresses the database does not
//! know add nothing.

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

/// PostHog's property names, in its order.
pub const PROPERTIES: [&str; 7] = [
    "$geoip_country_name",
    "$geoip_city_name",
    "$geoip_country_code",
    "$geoip_continent_name",
    "$geoip_continent_code",
    "$geoip_postal_code",
    "$geoip_time_zone",
];

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the GeoIP database {path}: {source}")]
pub struct GeoIpError {
    path: String,
    #[source]
    source: maxminddb::MaxMindDbError,
}

/// An opened MMDB file, read into memory once.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_type", &self.reader.metadata().database_type)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: Names<'a>,
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Postal<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Location<'a> {
    #[serde(borrow, default)]
    time_zone: Option<&'a str>,
}

/// The fields of a GeoIP2/GeoLite2 City record PostHog reads (a Country database has a subset).
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Named<'a>,
    #[serde(borrow, default)]
    city: Named<'a>,
    #[serde(borrow, default)]
    continent: Named<'a>,
    #[serde(borrow, default)]
    postal: Postal<'a>,
    #[serde(borrow, default)]
    location: Location<'a>,
}

impl GeoIp {
    /// Reads the database at `path`.
    pub fn open(path: &Path) -> Result<GeoIp, GeoIpError> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| GeoIp { reader })
            .map_err(|source| GeoIpError {
                path: path.display().to_string(),
                source,
            })
    }

    /// The `$geoip_*` properties of `ip`, in [`PROPERTIES`] order; empty for loopback and
    /// unknown addresses.
    pub fn lookup(&self, ip: IpAddr) -> Vec<(&'static str, String)> {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            return Vec::new();
        }
        let record = match self.reader.lookup(ip).and_then(|r| r.decode::<Record>()) {
            Ok(Some(record)) => record,
            Ok(None) => return Vec::new(),
            Err(e) => {
                tracing::debug!(error = %e, "GeoIP record unreadable");
                return Vec::new();
            }
        };
        let values = [
            record.country.names.en,
            record.city.names.en,
            record.country.iso_code,
            record.continent.names.en,
            record.continent.code,
            record.postal.code,
            record.location.time_zone,
        ];
        PROPERTIES
            .iter()
            .zip(values)
            .filter_map(|(name, value)| value.map(|v| (*name, v.to_owned())))
            .collect()
    }

    /// Adds `ip`'s properties to `person_properties` where they are absent or null.
    pub fn enrich(&self, person_properties: &mut Option<Map<String, Value>>, ip: IpAddr) {
        let found = self.lookup(ip);
        if found.is_empty() {
            return;
        }
        let properties = person_properties.get_or_insert_with(Map::new);
        for (name, value) in found {
            match properties.get(name) {
                Some(v) if !v.is_null() => {}
                _ => {
                    properties.insert(name.to_owned(), Value::String(value));
                }
            }
        }
    }
}
