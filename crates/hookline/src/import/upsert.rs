//! Writing what was read into this Hookline's store: every object upserted
//! by its source id, so running the import again creates nothing new,
//! updates what changed in the source and leaves the rest alone.
//!
//! What is written is what the API would accept (`api::rules`): an object
//! the API would refuse is skipped with the reason, never stored half-valid.
//! Nothing here deletes: an object deleted in the source stays in the target.

use std::collections::BTreeSet;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::report::{Outcome, Report};
use super::svix::{parse_time, SourceApp, SourceEndpoint, SvixEventType, SvixHeaders};
use crate::api::rules::{
    check_endpoint_in, check_headers, ApplicationIn, EndpointIn, EventTypeIn, Validation, DEFAULT_GRACE,
    MAX_ENDPOINTS_PER_APP, MAX_RETIRED_SECRETS,
};
use crate::ids::IdKind;
use crate::keys::{Owner, SecretCipher};
use crate::store::model::{Application, Endpoint, EventType, RetiredSecret, SealedSecret, StringMap, Timestamp};
use crate::store::{StoreError, StoreResult, Tx};

/// Upserts one page of event types, archived ones included (and kept
/// archived). `validatePayloads`, Hookline's own setting, is copied from a
/// Hookline source and otherwise left as the target has it.
pub fn import_event_types(tx: &mut dyn Tx, types: &[SvixEventType], now: Timestamp) -> StoreResult<Report> {
    let mut report = Report::default();
    for src in types {
        let existing = tx.event_type(&src.name)?;
        let input = EventTypeIn {
            name: src.name.clone(),
            description: src.description.clone(),
            archived: src.archived,
            deprecated: src.deprecated,
            schemas: src.schemas.clone(),
            feature_flag: src.feature_flag.clone(),
            feature_flags: src.feature_flags.clone(),
            group_name: src.group_name.clone(),
            validate_payloads: src
                .validate_payloads
                .or(existing.as_ref().map(|e| e.validate_payloads))
                .unwrap_or(false),
        };
        let mut v = Validation::default();
        input.validate(&mut v);
        if let Some(why) = refused(&v) {
            report.event_types.add(Outcome::Skipped);
            report.note(format!("event type {:?}: {why}", src.name));
            continue;
        }
        let created_at = existing.as_ref().map(|e| e.created_at).or_else(|| parse_time(src.created_at.as_deref()));
        let wanted = EventType { created_at: created_at.unwrap_or(now), updated_at: now, ..input.into_record() };
        let outcome = match existing {
            None => {
                tx.insert_event_type(&wanted)?;
                Outcome::Created
            }
            Some(existing) if crate::catalog::same_content(&existing, &wanted) => Outcome::Unchanged,
            Some(_) => {
                tx.update_event_type(&wanted)?;
                Outcome::Updated
            }
        };
        report.event_types.add(outcome);
    }
    Ok(report)
}

/// Upserts an application and its endpoints (one transaction).
pub fn import_app(tx: &mut dyn Tx, source: &SourceApp, cipher: &SecretCipher, now: Timestamp) -> StoreResult<Report> {
    let src = &source.app;
    if src.id == crate::operational::APP_ID {
        return Ok(skipped(source, "Hookline's internal application of operational webhooks is never copied"));
    }
    let input = ApplicationIn {
        name: src.name.clone(),
        uid: src.uid.clone(),
        rate_limit: src.rate_limit(),
        metadata: src.metadata.clone(),
    };
    let mut v = Validation::default();
    input.validate(&mut v);
    if let Some(why) = refused(&v) {
        return Ok(skipped(source, &why));
    }
    let place = Placement::of(tx, IdKind::Application, &src.id)?;
    let existing = tx.application_for_update(&place.id)?;
    let created_at = existing.as_ref().map(|a| a.created_at).or_else(|| parse_time(src.created_at.as_deref()));
    let wanted = Application {
        id: place.id.clone(),
        created_at: created_at.unwrap_or(now),
        updated_at: now,
        ..input.into_new()
    };
    let written = match &existing {
        None => tx.insert_application(&wanted).map(|()| Outcome::Created),
        Some(existing) if same_application(existing, &wanted) => Ok(Outcome::Unchanged),
        Some(_) => tx.update_application(&wanted).map(|()| Outcome::Updated),
    };
    let outcome = match written {
        Ok(outcome) => outcome,
        Err(StoreError::Conflict(_)) => {
            let uid = wanted.uid.as_deref().unwrap_or_default();
            let why =
                format!("its uid {uid:?} belongs to another application of the target (change or delete that one)");
            return Ok(skipped(source, &why));
        }
        Err(e) => return Err(e),
    };
    let mut report = Report::default();
    place.remember(tx, &mut report)?;
    report.applications.add(outcome);
    for endpoint in &source.endpoints {
        import_endpoint(tx, &mut report, &place.id, endpoint, cipher, now)?;
    }
    Ok(report)
}

/// An application not copied, with its endpoints.
fn skipped(source: &SourceApp, why: &str) -> Report {
    let mut report = Report::default();
    report.applications.add(Outcome::Skipped);
    let also = match source.endpoints.len() {
        0 => String::new(),
        1 => "; its endpoint is not copied either".to_string(),
        n => format!("; its {n} endpoints are not copied either"),
    };
    report.note(format!("application {}: {why}{also}", source.app.id));
    for _ in &source.endpoints {
        report.endpoints.add(Outcome::Skipped);
    }
    report
}

fn import_endpoint(
    tx: &mut dyn Tx,
    report: &mut Report,
    app_id: &str,
    src: &SourceEndpoint,
    cipher: &SecretCipher,
    now: Timestamp,
) -> StoreResult<()> {
    let ep = &src.endpoint;
    let label = format!("endpoint {} of application {app_id}", ep.id);
    let place = Placement::of(tx, IdKind::Endpoint, &ep.id)?;
    let existing = tx.endpoint_for_update(app_id, &place.id)?;
    let headers = plan_headers(&src.headers, existing.as_ref().map(|e| &e.headers));
    let input = EndpointIn {
        url: ep.url.clone(),
        description: ep.description.clone(),
        uid: ep.uid.clone(),
        version: ep.version,
        disabled: ep.disabled,
        filter_types: ep.filter_types(),
        channels: ep.channels.clone(),
        rate_limit: ep.rate_limit(),
        secret: Some(src.secret.to_string()),
        metadata: ep.metadata.clone(),
        headers: Some(headers.headers.clone()),
    };
    let mut v = Validation::default();
    let secret = Zeroizing::new(check_endpoint_in(&mut v, &input));
    if let Some(why) = refused(&v) {
        report.endpoints.add(Outcome::Skipped);
        report.note(format!("{label}: {why}"));
        return Ok(());
    }
    let wanted = Endpoint {
        created_at: parse_time(ep.created_at.as_deref()).unwrap_or(now),
        ..input.into_endpoint(place.id.clone(), app_id.to_string(), SealedSecret(Vec::new()), now)
    };
    let (endpoint_outcome, secret_outcome) = match existing {
        None => {
            if tx.count_endpoints(app_id)? >= MAX_ENDPOINTS_PER_APP {
                report.endpoints.add(Outcome::Skipped);
                report.note(format!("{label}: the application already has {MAX_ENDPOINTS_PER_APP} endpoints"));
                return Ok(());
            }
            let sealed = SealedSecret(cipher.seal(&secret, Owner::Endpoint(&wanted.id)));
            match tx.insert_endpoint(&Endpoint { secret: sealed, ..wanted.clone() }) {
                Ok(()) => (Outcome::Created, Outcome::Created),
                Err(StoreError::Conflict(_)) => {
                    report.endpoints.add(Outcome::Skipped);
                    report.note(format!("{label}: its id or uid is taken by another endpoint of the target"));
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Some(current) => {
            let mut next = Endpoint {
                secret: current.secret.clone(),
                retired_secrets: current.retired_secrets.clone(),
                failing_since: current.failing_since,
                created_at: current.created_at,
                ..wanted.clone()
            };
            // Enabled again: the auto-disable clock starts over, as on PATCH.
            if current.disabled && !next.disabled {
                next.failing_since = None;
            }
            let settings_changed = !same_settings(&current, &next);
            let stored = cipher.open(&current.secret.0, Owner::Endpoint(&current.id)).map_err(StoreError::Backend)?;
            let secret_changed = !bool::from(stored.as_slice().ct_eq(secret.as_slice()));
            if secret_changed {
                // Rotated in the source: rotate here too, the old secret
                // signing beside the new one for the usual grace period.
                next.retired_secrets.retain(|r| r.expires_at > now);
                let retired = RetiredSecret {
                    secret: current.secret.clone(),
                    expires_at: now + chrono::Duration::seconds(DEFAULT_GRACE),
                };
                next.retired_secrets.insert(0, retired);
                next.retired_secrets.truncate(MAX_RETIRED_SECRETS);
                next.secret = SealedSecret(cipher.seal(&secret, Owner::Endpoint(&next.id)));
            }
            if settings_changed || secret_changed || next.headers != current.headers {
                match tx.update_endpoint(&next) {
                    Ok(()) => {}
                    Err(StoreError::Conflict(_)) => {
                        report.endpoints.add(Outcome::Skipped);
                        report.note(format!("{label}: its uid is taken by another endpoint of the target"));
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                // Work that waited while it was disabled resumes.
                if current.disabled && !next.disabled {
                    tx.requeue_endpoint(&next.id)?;
                }
            }
            (
                if settings_changed { Outcome::Updated } else { Outcome::Unchanged },
                if secret_changed { Outcome::Updated } else { Outcome::Unchanged },
            )
        }
    };
    place.remember(tx, report)?;
    report.endpoints.add(endpoint_outcome);
    report.secrets.add(secret_outcome);
    for (_, outcome) in &headers.outcomes {
        report.headers.add(*outcome);
    }
    for note in headers.notes {
        report.note(format!("{label}: {note}"));
    }
    if let Some(types) = &wanted.filter_types {
        let known: BTreeSet<String> = tx.event_types_named(types)?.into_iter().map(|et| et.name).collect();
        let unknown: Vec<&str> = types.iter().map(String::as_str).filter(|t| !known.contains(*t)).collect();
        if !unknown.is_empty() {
            report.note(format!(
                "{label}: filters on event types the catalog does not have ({}); copied as they are",
                unknown.join(", ")
            ));
        }
    }
    Ok(())
}

/// The problems the API's rules found, in one line; `None` when valid.
fn refused(v: &Validation) -> Option<String> {
    let problems = v.problems();
    (!problems.is_empty()).then(|| format!("not valid in Hookline: {}", problems.join("; ")))
}

fn same_application(a: &Application, b: &Application) -> bool {
    a.uid == b.uid && a.name == b.name && a.rate_limit == b.rate_limit && a.metadata == b.metadata
}

/// The endpoint's own settings (not its secret or headers).
fn same_settings(a: &Endpoint, b: &Endpoint) -> bool {
    a.uid == b.uid
        && a.url == b.url
        && a.description == b.description
        && a.version == b.version
        && a.disabled == b.disabled
        && a.rate_limit == b.rate_limit
        && a.filter_types == b.filter_types
        && a.channels == b.channels
        && a.metadata == b.metadata
}

/// Where a source object goes: its own id when it is a valid Hookline id,
/// otherwise the id an earlier run gave it, otherwise a new one (written
/// down in the store's meta table so the next run finds it).
struct Placement {
    kind: IdKind,
    source_id: String,
    id: String,
    /// Whether the target id must still be written down.
    new_mapping: bool,
}

impl Placement {
    fn of(tx: &mut dyn Tx, kind: IdKind, source_id: &str) -> StoreResult<Placement> {
        let (id, new_mapping) = if kind.matches(source_id) {
            (source_id.to_string(), false)
        } else {
            match tx.meta(&mapping_key(kind, source_id))? {
                Some(id) => (id, false),
                None => (kind.generate(), true),
            }
        };
        Ok(Placement { kind, source_id: source_id.to_string(), id, new_mapping })
    }

    /// Called once the object is written under `id`.
    fn remember(&self, tx: &mut dyn Tx, report: &mut Report) -> StoreResult<()> {
        if self.new_mapping {
            tx.set_meta(&mapping_key(self.kind, &self.source_id), &self.id)?;
        }
        if self.id == self.source_id {
            report.ids_kept += 1;
        } else {
            report.ids_mapped += 1;
        }
        Ok(())
    }
}

fn mapping_key(kind: IdKind, source_id: &str) -> String {
    format!("import.svix.{}{source_id}", kind.prefix())
}

/// The headers an endpoint gets, and how each name fared.
#[derive(Debug, Default, PartialEq, Eq)]
struct HeaderPlan {
    headers: StringMap,
    outcomes: Vec<(String, Outcome)>,
    notes: Vec<String>,
}

/// The source's headers over what the target has (`None`: a new endpoint).
/// A sensitive header comes without its value: the target's value is kept
/// when it has one (set there by hand after an earlier run), otherwise it is
/// reported (a value shown for it anyway is taken for a redaction). A
/// header the API would refuse is left out and reported.
fn plan_headers(source: &SvixHeaders, existing: Option<&StringMap>) -> HeaderPlan {
    let mut plan = HeaderPlan::default();
    let before = |name: &str| existing.and_then(|e| e.get(name));
    let sensitive = |name: &str| source.sensitive.iter().any(|s| s.eq_ignore_ascii_case(name));
    // A sensitive header's value, if a source shows one at all, is a redaction.
    for (name, value) in source.headers.iter().filter(|(name, _)| !sensitive(name)) {
        let mut v = Validation::default();
        check_headers(&mut v, &StringMap::from([(name.clone(), value.clone())]));
        let outcome = if let Some(why) = v.problems().first() {
            plan.notes.push(format!("header {name:?} not copied: {why}"));
            Outcome::Skipped
        } else {
            plan.headers.insert(name.clone(), value.clone());
            match before(name) {
                None => Outcome::Created,
                Some(old) if old == value => Outcome::Unchanged,
                Some(_) => Outcome::Updated,
            }
        };
        plan.outcomes.push((name.clone(), outcome));
    }
    for name in &source.sensitive {
        let kept = existing.and_then(|e| e.iter().find(|(have, _)| have.eq_ignore_ascii_case(name)));
        let outcome = match kept {
            Some((have, value)) => {
                plan.headers.insert(have.clone(), value.clone());
                Outcome::Unchanged
            }
            None => {
                plan.notes.push(format!(
                    "sensitive header {name:?} not copied: the source never shows its value; set it on the target \
                     (PATCH …/endpoint/{{id}}/headers); later runs keep it"
                ));
                Outcome::Skipped
            }
        };
        plan.outcomes.push((name.clone(), outcome));
    }
    for name in existing.into_iter().flat_map(|e| e.keys()) {
        if !plan.headers.contains_key(name) {
            plan.outcomes.push((name.clone(), Outcome::Updated));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::svix::SvixApp;
    use crate::keys::MainKey;
    use crate::store::sqlite::SqliteStore;
    use crate::store::Store;
    use serde_json::json;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn map(pairs: &[(&str, &str)]) -> StringMap {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn app(id: &str, uid: Option<&str>, endpoints: Vec<SourceEndpoint>) -> SourceApp {
        let app: SvixApp = serde_json::from_value(json!({
            "id": id, "uid": uid, "name": "Acme", "metadata": {"plan": "pro"},
            "createdAt": "2024-01-02T03:04:05.678Z"
        }))
        .unwrap();
        SourceApp { app, endpoints }
    }

    fn endpoint(id: &str, url: &str, secret: &str, headers: SvixHeaders) -> SourceEndpoint {
        SourceEndpoint {
            endpoint: serde_json::from_value(json!({
                "id": id, "url": url, "description": "orders", "filterTypes": ["order.paid"],
                "channels": ["eu"], "rateLimit": 10, "disabled": false, "version": 1
            }))
            .unwrap(),
            secret: Zeroizing::new(secret.to_string()),
            headers,
        }
    }

    fn event_type(name: &str, archived: bool) -> SvixEventType {
        serde_json::from_value(json!({
            "name": name, "description": "d", "archived": archived,
            "schemas": {"1": {"type": "object"}}
        }))
        .unwrap()
    }

    struct Target {
        store: Store,
        cipher: SecretCipher,
        _dir: tempfile::TempDir,
    }

    impl Target {
        fn new() -> Target {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::Sqlite(SqliteStore::open(dir.path()).unwrap());
            Target { store, cipher: SecretCipher::new(&MainKey::from_bytes([3; 32])), _dir: dir }
        }

        async fn types(&self, types: Vec<SvixEventType>) -> Report {
            self.store.write(move |tx| import_event_types(tx, &types, crate::store::model::now())).await.unwrap()
        }

        async fn app(&self, source: SourceApp) -> Report {
            let source = std::sync::Arc::new(source);
            let cipher = self.cipher.clone();
            self.store.write(move |tx| import_app(tx, &source, &cipher, crate::store::model::now())).await.unwrap()
        }

        async fn endpoint(&self, app: &str, key: &str) -> Endpoint {
            let (app, key) = (app.to_string(), key.to_string());
            self.store.read(move |tx| tx.endpoint(&app, &key)).await.unwrap().expect("endpoint exists")
        }
    }

    fn some_ids() -> (String, String) {
        (IdKind::Application.generate(), IdKind::Endpoint.generate())
    }

    #[tokio::test]
    async fn importing_twice_creates_once_then_changes_nothing() {
        let target = Target::new();
        let (app_id, ep_id) = some_ids();
        let source = || {
            let headers = SvixHeaders { headers: map(&[("x-tenant", "acme")]), sensitive: vec![] };
            app(&app_id, Some("acme"), vec![endpoint(&ep_id, "https://acme.example/hook", SECRET, headers)])
        };
        let first = target.types(vec![event_type("order.paid", false), event_type("old.thing", true)]).await;
        assert_eq!((first.event_types.created, first.event_types.skipped), (2, 0));
        let first = target.app(source()).await;
        assert_eq!((first.applications.created, first.endpoints.created, first.secrets.created), (1, 1, 1));
        assert_eq!((first.headers.created, first.ids_kept, first.ids_mapped), (1, 2, 0));
        assert!(first.notes.is_empty(), "{:?}", first.notes);

        let again = target.types(vec![event_type("order.paid", false), event_type("old.thing", true)]).await;
        assert_eq!(again.event_types.unchanged, 2);
        let again = target.app(source()).await;
        assert!(!again.changed_anything(), "{again:?}");
        assert_eq!((again.applications.unchanged, again.endpoints.unchanged, again.headers.unchanged), (1, 1, 1));

        let stored = target.endpoint(&app_id, &ep_id).await;
        let secret = target.cipher.open(&stored.secret.0, Owner::Endpoint(&ep_id)).unwrap();
        assert_eq!(crate::endpoint_key::format_secret(&secret), SECRET);
        assert_eq!(stored.filter_types, Some(vec!["order.paid".to_string()]));
        assert_eq!((stored.rate_limit, stored.channels), (Some(10), Some(vec!["eu".to_string()])));
        let archived = target.store.read(|tx| tx.event_type("old.thing")).await.unwrap().unwrap();
        assert!(archived.archived);
    }

    #[tokio::test]
    async fn ids_that_are_not_hookline_ids_get_new_ones_kept_across_runs() {
        let target = Target::new();
        target.types(vec![event_type("order.paid", false)]).await;
        let source = || {
            app("legacy-app-1", Some("legacy"), vec![endpoint("e1", "https://x.example", SECRET, Default::default())])
        };
        let first = target.app(source()).await;
        assert_eq!((first.ids_kept, first.ids_mapped, first.endpoints.created), (0, 2, 1));
        let again = target.app(source()).await;
        assert_eq!((again.ids_mapped, again.endpoints.unchanged, again.applications.unchanged), (2, 1, 1));
        let found = target.store.read(|tx| tx.application("legacy")).await.unwrap().unwrap();
        assert!(IdKind::Application.matches(&found.id), "{}", found.id);
        let count = target.store.read(move |tx| tx.count_endpoints(&found.id)).await.unwrap();
        assert_eq!(count, 1, "the second run found the endpoint it created");
    }

    #[tokio::test]
    async fn a_secret_rotated_in_the_source_is_rotated_here_with_a_grace_period() {
        let target = Target::new();
        target.types(vec![event_type("order.paid", false)]).await;
        let (app_id, ep_id) = some_ids();
        target.app(app(&app_id, None, vec![endpoint(&ep_id, "https://x.example", SECRET, Default::default())])).await;
        let rotated = target
            .app(app(&app_id, None, vec![endpoint(&ep_id, "https://x.example", OTHER_SECRET, Default::default())]))
            .await;
        assert_eq!((rotated.secrets.updated, rotated.endpoints.unchanged), (1, 1));
        let stored = target.endpoint(&app_id, &ep_id).await;
        let current = target.cipher.open(&stored.secret.0, Owner::Endpoint(&ep_id)).unwrap();
        assert_eq!(crate::endpoint_key::format_secret(&current), OTHER_SECRET);
        assert_eq!(stored.retired_secrets.len(), 1);
        let old = target.cipher.open(&stored.retired_secrets[0].secret.0, Owner::Endpoint(&ep_id)).unwrap();
        assert_eq!(crate::endpoint_key::format_secret(&old), SECRET);
    }

    #[tokio::test]
    async fn changes_in_the_source_update_the_target_and_re_enable_resets_the_clock() {
        let target = Target::new();
        target.types(vec![event_type("order.paid", false)]).await;
        let (app_id, ep_id) = some_ids();
        let mut disabled = endpoint(&ep_id, "https://x.example", SECRET, Default::default());
        disabled.endpoint.disabled = Some(true);
        target.app(app(&app_id, None, vec![disabled])).await;
        let changed = endpoint(&ep_id, "https://moved.example", SECRET, Default::default());
        let report = target.app(app(&app_id, None, vec![changed])).await;
        assert_eq!((report.endpoints.updated, report.secrets.unchanged), (1, 1));
        let stored = target.endpoint(&app_id, &ep_id).await;
        assert_eq!((stored.url.as_str(), stored.disabled), ("https://moved.example", false));
    }

    #[tokio::test]
    async fn a_uid_taken_by_another_target_application_skips_it_and_its_endpoints() {
        let target = Target::new();
        let (other, _) = some_ids();
        let squatter = Application {
            id: other,
            uid: Some("acme".into()),
            name: "made by hand".into(),
            rate_limit: None,
            metadata: StringMap::new(),
            created_at: crate::store::model::now(),
            updated_at: crate::store::model::now(),
        };
        target.store.write(move |tx| tx.insert_application(&squatter)).await.unwrap();
        let (app_id, ep_id) = some_ids();
        let report = target
            .app(app(&app_id, Some("acme"), vec![endpoint(&ep_id, "https://x.example", SECRET, Default::default())]))
            .await;
        assert_eq!((report.applications.skipped, report.endpoints.skipped), (1, 1));
        assert!(report.notes[0].contains("uid \"acme\" belongs to another application"), "{:?}", report.notes);
    }

    #[tokio::test]
    async fn what_the_api_would_refuse_is_skipped_with_the_reason() {
        let target = Target::new();
        let (app_id, ep_id) = some_ids();
        let report =
            target.app(app(&app_id, None, vec![endpoint(&ep_id, "ftp://x.example", SECRET, Default::default())])).await;
        assert_eq!((report.applications.created, report.endpoints.skipped, report.secrets), (1, 1, Default::default()));
        assert!(report.notes.iter().any(|n| n.contains(&ep_id) && n.contains("url")), "{:?}", report.notes);
        // The filter names a type the (empty) catalog lacks: copied, and said.
        let (_, ep2) = some_ids();
        let report =
            target.app(app(&app_id, None, vec![endpoint(&ep2, "https://x.example", SECRET, Default::default())])).await;
        assert_eq!(report.endpoints.created, 1);
        assert!(report.notes.iter().any(|n| n.contains("order.paid")), "{:?}", report.notes);
        let bad = target.types(vec![serde_json::from_value(json!({"name": "has space"})).unwrap()]).await;
        assert_eq!(bad.event_types.skipped, 1);
    }

    #[tokio::test]
    async fn the_operational_application_is_never_copied() {
        let target = Target::new();
        let report = target.app(app(crate::operational::APP_ID, None, vec![])).await;
        assert_eq!(report.applications.skipped, 1);
    }

    #[test]
    fn sensitive_headers_keep_the_targets_value_or_are_reported() {
        let source = SvixHeaders {
            headers: map(&[("x-tenant", "acme"), ("x-new", "1"), ("Host", "evil"), ("authorization", "********")]),
            sensitive: vec!["Authorization".into(), "X-Api-Key".into()],
        };
        let first = plan_headers(&source, None);
        assert_eq!(first.headers, map(&[("x-new", "1"), ("x-tenant", "acme")]));
        let skipped: Vec<_> = first.outcomes.iter().filter(|(_, o)| *o == Outcome::Skipped).map(|(n, _)| n).collect();
        assert_eq!(skipped, ["Host", "Authorization", "X-Api-Key"]);
        assert_eq!(first.notes.len(), 3);

        let target = map(&[("authorization", "Bearer set-by-hand"), ("x-tenant", "old"), ("x-gone", "1")]);
        let again = plan_headers(&source, Some(&target));
        assert_eq!(
            again.headers,
            map(&[("authorization", "Bearer set-by-hand"), ("x-new", "1"), ("x-tenant", "acme")])
        );
        let outcome = |name: &str| again.outcomes.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(outcome("x-tenant"), Outcome::Updated);
        assert_eq!(outcome("x-new"), Outcome::Created);
        assert_eq!(outcome("Authorization"), Outcome::Unchanged);
        assert_eq!(outcome("X-Api-Key"), Outcome::Skipped);
        assert_eq!(outcome("x-gone"), Outcome::Updated, "removed");
    }
}
