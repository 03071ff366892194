//! Table and directory locations: local paths or object-store URIs, with
//! storage options in the keys delta-rs / object_store users already write
//! (`azure_storage_account_name`, `azure_storage_use_emulator`, …).

use std::collections::HashMap;
use std::sync::Arc;

use object_store::ObjectStore;
use url::Url;

use crate::error::{Error, Result};

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

impl Location {
    /// The URL of the location; local paths become absolute `file://` URLs
    /// (directories are created).
    pub fn url(&self) -> Result<Url> {
        deltalake::ensure_table_uri(&self.uri).map_err(|e| {
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
}
