//! Remote-config fields flattened into `/flags` and `/decide` bodies (spec §1.6.6).
//!
//! Vexil serves feature flags only, so the full config reports every other product (session
//! recording, surveys, heatmaps, site apps, ...) as off. Only legacy posthog-js callers read these
//! fields; server SDKs never ask for them.

use serde::ser::SerializeMap;
use serde_json::json;

/// Which config fields a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFields {
    /// The GET / bot / minimal response: `supportedCompression`, `config`, `toolbarParams`,
    /// `isAuthenticated`, `sessionRecording`.
    Minimal,
    /// `config=true` on a POST.
    Full(FullConfig),
}

/// The project settings that the full config reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FullConfig {
    /// `autocapture_opt_out`.
    pub autocapture_opt_out: bool,
    /// `hasFeatureFlags`: whether the project has any active flag.
    pub has_feature_flags: bool,
}

impl ConfigFields {
    /// Writes the fields into a response map being serialized.
    pub(crate) fn serialize_entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry("supportedCompression", &["gzip", "gzip-js"])?;
        m.serialize_entry("config", &json!({"enable_collect_everything": true}))?;
        m.serialize_entry("toolbarParams", &json!({}))?;
        m.serialize_entry("isAuthenticated", &false)?;
        m.serialize_entry("sessionRecording", &false)?;
        let ConfigFields::Full(full) = self else {
            return Ok(());
        };
        m.serialize_entry("autocapture_opt_out", &full.autocapture_opt_out)?;
        m.serialize_entry("elementsChainAsString", &true)?;
        m.serialize_entry("capturePerformance", &false)?;
        m.serialize_entry("autocaptureExceptions", &false)?;
        m.serialize_entry("surveys", &false)?;
        m.serialize_entry("heatmaps", &false)?;
        m.serialize_entry("defaultIdentifiedOnly", &true)?;
        m.serialize_entry("flagsPersistenceDefault", &false)?;
        m.serialize_entry("captureDeadClicks", &false)?;
        m.serialize_entry("siteApps", &json!([]))?;
        m.serialize_entry(
            "errorTracking",
            &json!({"autocaptureExceptions": false, "suppressionRules": []}),
        )?;
        m.serialize_entry("hasFeatureFlags", &full.has_feature_flags)?;
        Ok(())
    }
}
