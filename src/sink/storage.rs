//! Table and directory locations: local paths or object-store URIs, with
//! storage options in the keys delta-rs / object_store users already write
//! (`azure_storage_account_name`, `azure_storage_use_emulator`, …).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::{register_secrets, Error, Result};
use crate::runtime::block_on;

/// A location and the options to reach it.
#[derive(Clone, Default)]
pub struct Location {
    /// As the user gave it.
    pub uri: String,
    /// Storage options (credentials among them: never printed).
    pub options: HashMap<String, String>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.options.keys().collect();
        keys.sort();
        f.debug_struct("Location")
            .field("uri", &self.uri)
            .field("option_keys", &keys)
            .finish()
    }
}

/// Schemes a location may use; everything else is refused before any work.
const SCHEMES: &[&str] = &["file", "memory", "az", "adl", "azure", "abfs", "abfss"];

/// The URI deltalake understands for `uri`: Azure `https://<account>.blob|dfs.core.windows.net/<container>/<path>`
/// URLs become `abfss://<container>@<account>.dfs.core.windows.net/<path>`
/// (the same account and container); other URIs and local paths are kept.
pub fn canonical_uri(uri: &str) -> Result<String> {
    let Some((scheme, _)) = uri.split_once("://") else {
        return Ok(uri.to_string());
    };
    let scheme = scheme.to_ascii_lowercase();
    if SCHEMES.contains(&scheme.as_str()) {
        return Ok(uri.to_string());
    }
    let usage = "use a local path, file://…, az://<container>/<path>, \
         abfss://<container>@<account>.dfs.core.windows.net/<path> or \
         https://<account>.blob.core.windows.net/<container>/<path>";
    if scheme != "https" && scheme != "http" {
        return Err(Error::InvalidArgument(format!(
            "'{uri}' has the unsupported scheme '{scheme}://'; {usage}"
        )));
    }
    let url = Url::parse(uri).map_err(|e| {
        Error::InvalidArgument(format!("'{uri}' is not a valid URL ({e}); {usage}"))
    })?;
    let host = url.host_str().unwrap_or_default();
    let account = host
        .strip_suffix(".blob.core.windows.net")
        .or_else(|| host.strip_suffix(".dfs.core.windows.net"))
        .filter(|a| !a.is_empty() && !a.contains('.'))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "'{uri}': only Azure Blob Storage / ADLS Gen2 https URLs are supported \
                 (host <account>.blob.core.windows.net or <account>.dfs.core.windows.net, \
                 got '{host}'); {usage}"
            ))
        })?;
    let mut segments = url
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty());
    let container = segments.next().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "'{uri}' names no container: https://{host}/<container>/<path>"
        ))
    })?;
    let path: Vec<&str> = segments.collect();
    Ok(format!(
        "abfss://{container}@{account}.dfs.core.windows.net/{}",
        path.join("/")
    ))
}

impl Location {
    /// Whether the location is on local disk (or in memory).
    pub fn is_local(&self) -> bool {
        match self.uri.split_once("://") {
            None => true,
            Some((scheme, _)) => matches!(scheme, "file" | "memory"),
        }
    }

    /// The same location, in the URI form deltalake understands.
    pub fn canonical(&self) -> Result<Location> {
        Ok(Location {
            uri: canonical_uri(&self.uri)?,
            options: self.options.clone(),
        })
    }

    /// The URL of the location; local paths become absolute `file://` URLs
    /// (directories are created).
    pub fn url(&self) -> Result<Url> {
        register_secrets(self.options.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        deltalake::ensure_table_uri(canonical_uri(&self.uri)?).map_err(|e| {
            Error::InvalidArgument(format!(
                "'{}' is not a usable table location: {e}",
                self.uri
            ))
        })
    }

    /// An object store rooted at the location.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        let url = self.url()?;
        deltalake::logstore::store_for(&url, self.options.clone())
            .map_err(|e| Error::Storage(format!("cannot open storage at '{}': {e}", self.uri)))
    }

    /// For object stores: list, write and delete a small marker, so wrong
    /// credentials, a missing container or a read-only token fail here,
    /// before any message is consumed. Local directories are checked when
    /// they are created.
    pub fn check_access(&self) -> Result<()> {
        if self.is_local() {
            return Ok(());
        }
        let store = self.store()?;
        let probe = Path::from(format!("_kafkalake_access_check_{}", std::process::id()));
        block_on(async {
            let err = |what: &str, e: object_store::Error| {
                Error::Storage(format!("cannot {what} '{}': {e}", self.uri))
            };
            let mut list = store.list(None);
            if let Some(Err(e)) = list.next().await {
                return Err(err("list", e));
            }
            drop(list);
            store
                .put(&probe, PutPayload::from_static(b"kafkalake"))
                .await
                .map_err(|e| err("write to", e))?;
            store
                .delete(&probe)
                .await
                .map_err(|e| err("delete from", e))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_https_urls_become_abfss() {
        assert_eq!(
            canonical_uri("https://acct.blob.core.windows.net/lake/events/iot").unwrap(),
            "abfss://lake@acct.dfs.core.windows.net/events/iot"
        );
        assert_eq!(
            canonical_uri("https://acct.dfs.core.windows.net/lake").unwrap(),
            "abfss://lake@acct.dfs.core.windows.net/"
        );
        for kept in [
            "/tmp/x",
            "az://c/p",
            "abfss://c@a.dfs.core.windows.net/p",
            "file:///x",
        ] {
            assert_eq!(canonical_uri(kept).unwrap(), kept);
        }
    }

    #[test]
    fn bad_schemes_and_hosts_are_named() {
        let e = canonical_uri("azz://c/p").unwrap_err().to_string();
        assert!(e.contains("unsupported scheme 'azz://'"), "{e}");
        let e = canonical_uri("https://acct.blob.core.windows.nett/c/p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("got 'acct.blob.core.windows.nett'"), "{e}");
        let e = canonical_uri("https://acct.blob.core.windows.net/")
            .unwrap_err()
            .to_string();
        assert!(e.contains("names no container"), "{e}");
    }
}
