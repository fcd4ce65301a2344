//! The layers of the configuration, later layers winning:
//!
//! 1. the defaults compiled into the binary (the text of `config/default.toml`), then that file
//!    on disk if present;
//! 2. `config/{APP_ENV}.toml` if present (`APP_ENV` defaults to `development`);
//! 3. the file named by `INVITETOMEDIA_CONFIG`, if set;
//! 4. every `<id>.toml` in `tenants_dir`: the table of tenant `<id>`;
//! 5. environment variables `INVITETOMEDIA__SECTION__KEY`.
//!
//! Keys are matched case-insensitively: files keep the admin console's spelling
//! (`LinkDuration`), environment variables arrive upper-case, and every layer is lowercased
//! before merging so that a later layer overrides an earlier one whatever its spelling. Each
//! value keeps the file it came from, so an error names the file as well as the key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat, Map, Source, Value, ValueKind};

use super::module::MODULE_KEYS;
use super::{APP_ENVS, CONFIG_FILE_ENV, ConfigError, ENV_PREFIX, Settings};

/// The committed `config/default.toml`, compiled in: the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The tenant of the defaults (development and test only).
pub const DEMO_TENANT: &str = "demo";

/// Where to read the layers from; [`LoadOptions::from_env`] is what the binary uses.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Directory that may hold `default.toml` and `{APP_ENV}.toml`.
    pub config_dir: PathBuf,
    /// `APP_ENV`.
    pub app_env: String,
    /// `INVITETOMEDIA_CONFIG`.
    pub extra_file: Option<PathBuf>,
    /// Extra TOML applied after the files and before the environment (tests).
    pub extra_toml: Option<String>,
    /// Environment variables to read overrides from; `None` reads the process environment.
    pub env: Option<Map<String, String>>,
    /// The `tenants_dir` to read whatever the layers say: a reload keeps the one the service
    /// started with.
    pub tenants_dir: Option<Option<PathBuf>>,
}

impl LoadOptions {
    /// The layers as the binary finds them: `./config`, `APP_ENV`, `INVITETOMEDIA_CONFIG` and
    /// the process environment.
    pub fn from_env() -> Self {
        Self {
            config_dir: PathBuf::from("config"),
            app_env: std::env::var("APP_ENV").unwrap_or_else(|_| "development".to_owned()),
            extra_file: std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from),
            extra_toml: None,
            env: None,
            tenants_dir: None,
        }
    }
}

/// A loaded configuration and the directories whose files it was read from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub settings: Settings,
    /// Directories a change in which may change the configuration: the configuration
    /// directory, the extra file's, `tenants_dir`, `templates_dir` and each key file's.
    pub watched: BTreeSet<PathBuf>,
    /// The `tenants_dir` the layers name now (a reload reads the one it started with).
    pub configured_tenants_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads and validates the layered configuration.
    pub fn load(options: &LoadOptions) -> Result<Self, ConfigError> {
        Self::load_watched(options).map(|loaded| loaded.settings)
    }

    /// [`Settings::load`], with the directories to watch for changes.
    pub fn load_watched(options: &LoadOptions) -> Result<Loaded, ConfigError> {
        if !APP_ENVS.contains(&options.app_env.as_str()) {
            return Err(ConfigError::new(
                "APP_ENV",
                format!(
                    "{:?} is not one of development, test, production",
                    options.app_env
                ),
            ));
        }
        let layers = Layers::read(options)?;
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(options.env.clone());
        let mut settings: Settings = layers.build(env)?;
        settings.app_env = options.app_env.clone();
        settings.tenants_dir = layers.tenants_dir.clone();
        settings.validate().map_err(|e| layers.locate(e))?;
        let mut watched = BTreeSet::new();
        let mut watch = |dir: &Path| {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            watched.insert(dir.to_path_buf());
        };
        watch(&options.config_dir);
        if let Some(parent) = options.extra_file.as_deref().and_then(Path::parent) {
            watch(parent);
        }
        if let Some(dir) = &settings.tenants_dir {
            watch(dir);
        }
        watch(&settings.email.templates_dir);
        for file in settings.key_files() {
            if let Some(parent) = file.parent() {
                watch(parent);
            }
        }
        Ok(Loaded {
            settings,
            watched,
            configured_tenants_dir: layers.configured_tenants_dir,
        })
    }
}

/// The file layers, lowercased, in order, and the tenants_dir they resolved to.
struct Layers {
    files: Vec<Lowercased>,
    /// The directory read (pinned by a reload to the one the service started with).
    tenants_dir: Option<PathBuf>,
    /// The directory the layers name.
    configured_tenants_dir: Option<PathBuf>,
}

impl Layers {
    fn read(options: &LoadOptions) -> Result<Self, ConfigError> {
        let production = options.app_env == "production";
        let mut files = Vec::new();
        let mut defaults = vec![lowercased(
            File::from_str(DEFAULT_TOML, FileFormat::Toml),
            "the compiled-in defaults",
        )?];
        let on_disk = options.config_dir.join("default.toml");
        if on_disk.is_file() {
            defaults.push(lowercased(
                File::from(on_disk.as_path()),
                &on_disk.display().to_string(),
            )?);
        }
        for mut layer in defaults {
            if production {
                // The demo tenant of the defaults, with its published API key, exists only in
                // development and test; production has only the tenants it configures.
                layer.remove_tenant(DEMO_TENANT);
            }
            files.push(layer);
        }
        let env_file = options.config_dir.join(format!("{}.toml", options.app_env));
        if env_file.is_file() {
            files.push(lowercased(
                File::from(env_file.as_path()),
                &env_file.display().to_string(),
            )?);
        }
        if let Some(path) = &options.extra_file {
            files.push(lowercased(
                File::from(path.as_path()).required(true),
                &path.display().to_string(),
            )?);
        }
        if let Some(toml) = &options.extra_toml {
            files.push(lowercased(
                File::from_str(toml, FileFormat::Toml),
                "the test layer",
            )?);
        }
        let configured_tenants_dir = {
            let env = Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(options.env.clone());
            let mut builder = Config::builder();
            for layer in &files {
                builder = builder.add_source(layer.clone());
            }
            let merged = builder
                .add_source(env)
                .build()
                .map_err(|e| convert(e, &files))?;
            match merged.get::<String>("tenants_dir") {
                Ok(dir) if !dir.trim().is_empty() => Some(PathBuf::from(dir)),
                Ok(_) | Err(config::ConfigError::NotFound(_)) => None,
                Err(e) => return Err(convert(e, &files)),
            }
        };
        let tenants_dir = match &options.tenants_dir {
            Some(pinned) => pinned.clone(),
            None => configured_tenants_dir.clone(),
        };
        if let Some(dir) = &tenants_dir {
            let defined: BTreeSet<String> = files.iter().flat_map(Lowercased::tenant_ids).collect();
            for layer in tenant_files(dir)? {
                let id = layer.tenant_ids().next().unwrap_or_default();
                if defined.contains(&id) {
                    return Err(ConfigError::new(
                        format!("tenants.{id}"),
                        "tenant is defined in tenants_dir and in a configuration file: define it in one place",
                    )
                    .in_file(layer.name.clone()));
                }
                files.push(layer);
            }
        }
        Ok(Self {
            files,
            tenants_dir,
            configured_tenants_dir,
        })
    }

    fn build(&self, env: Environment) -> Result<Settings, ConfigError> {
        let mut builder = Config::builder();
        for layer in &self.files {
            builder = builder.add_source(layer.clone());
        }
        let config = builder
            .add_source(env)
            .build()
            .map_err(|e| convert(e, &self.files))?;
        config
            .try_deserialize()
            .map_err(|e| convert(e, &self.files))
    }

    /// Names the file a validation error's key came from.
    fn locate(&self, error: ConfigError) -> ConfigError {
        match (&error.file, origin_of(&self.files, &error.key)) {
            (None, Some(file)) => error.in_file(file),
            _ => error,
        }
    }
}

/// Every `<id>.toml` of `dir`, in name order, as a layer holding `tenants.<id>`.
fn tenant_files(dir: &Path) -> Result<Vec<Lowercased>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::new("tenants_dir", format!("cannot read {}: {e}", dir.display()))
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        // Kubernetes mounts keep their real files under `..data`: only the visible names count.
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut layers = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.display().to_string();
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_tenant_id(&id) {
            return Err(ConfigError::new(
                format!("tenants.{id}"),
                "tenant files are named <id>.toml with an id of 1 to 64 characters of lowercase [a-z0-9_-]",
            )
            .in_file(name));
        }
        let table = File::from(path.as_path())
            .collect()
            .map_err(|e| convert(e, &[]).in_file(name.clone()))?;
        let origin = Some(&name);
        let tenant = Value::new(origin, ValueKind::Table(lower_table(table)));
        let tenants = Value::new(origin, ValueKind::Table(Map::from([(id, tenant)])));
        layers.push(Lowercased {
            map: Map::from([("tenants".to_owned(), tenants)]),
            name,
        });
    }
    Ok(layers)
}

/// Whether `id` is a valid tenant id: 1 to 64 characters of lowercase `[a-z0-9_-]`.
pub fn is_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A layer with every key lowercased, so it merges with environment overrides.
#[derive(Debug, Clone)]
struct Lowercased {
    map: Map<String, Value>,
    /// The file, for errors.
    name: String,
}

impl Lowercased {
    /// Drops tenant `id` from this layer.
    fn remove_tenant(&mut self, id: &str) {
        if let Some(tenants) = self.map.get_mut("tenants")
            && let ValueKind::Table(table) = &mut tenants.kind
        {
            table.remove(id);
        }
    }

    /// The tenants this layer defines.
    fn tenant_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.map
            .get("tenants")
            .and_then(|t| match &t.kind {
                ValueKind::Table(table) => Some(table.keys().cloned()),
                _ => None,
            })
            .into_iter()
            .flatten()
    }

    /// Whether this layer sets `key` (dotted, lowercase).
    fn sets(&self, key: &str) -> bool {
        let mut table = &self.map;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let part = part.split('[').next().unwrap_or(part);
            match table.get(part) {
                None => return false,
                Some(_) if parts.peek().is_none() => return true,
                Some(value) => match &value.kind {
                    ValueKind::Table(inner) => table = inner,
                    _ => return true,
                },
            }
        }
        false
    }
}

impl Source for Lowercased {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        Ok(self.map.clone())
    }
}

fn lowercased(source: impl Source, name: &str) -> Result<Lowercased, ConfigError> {
    let map = source
        .collect()
        .map_err(|e| convert(e, &[]).in_file(name.to_owned()))?;
    if let Some(tenants) = map.get("tenants")
        && let ValueKind::Table(table) = &tenants.kind
        && let Some(bad) = table.keys().find(|k| k.to_lowercase() != **k)
    {
        return Err(
            ConfigError::new(format!("tenants.{bad}"), "tenant ids must be lowercase")
                .in_file(name.to_owned()),
        );
    }
    Ok(Lowercased {
        map: lower_table(map),
        name: name.to_owned(),
    })
}

fn lower_table(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (k.to_lowercase(), lower_value(v)))
        .collect()
}

fn lower_value(value: Value) -> Value {
    let origin = value.origin().map(str::to_owned);
    match value.kind {
        ValueKind::Table(t) => Value::new(origin.as_ref(), ValueKind::Table(lower_table(t))),
        ValueKind::Array(a) => Value::new(
            origin.as_ref(),
            ValueKind::Array(a.into_iter().map(lower_value).collect()),
        ),
        _ => value,
    }
}

/// The file that set `key` last (display spelling or lowercase), walking up to the nearest
/// key a layer sets; "the environment" when only an override could have.
fn origin_of(layers: &[Lowercased], key: &str) -> Option<String> {
    let mut key = key.to_lowercase();
    loop {
        if key.is_empty() {
            return None;
        }
        if let Some(layer) = layers.iter().rev().find(|l| l.sets(&key)) {
            return Some(layer.name.clone());
        }
        match key.rfind('.') {
            Some(dot) => key.truncate(dot),
            None => return None,
        }
    }
}

/// A `config` error as ours: its key in the documentation's spelling, and its file.
fn convert(error: config::ConfigError, layers: &[Lowercased]) -> ConfigError {
    use config::ConfigError as E;
    let (key, problem, origin) = match error {
        E::At { error, origin, key } => (key.unwrap_or_default(), error.to_string(), origin),
        E::Type {
            origin,
            unexpected,
            expected,
            key,
        } => (
            key.unwrap_or_default(),
            format!("invalid type: {unexpected}, expected {expected}"),
            origin,
        ),
        E::NotFound(key) => (key, "is required".to_owned(), None),
        // A TOML parse error quotes the offending line (`2 | secret = "…`), which may hold a
        // secret: keep the position and the parser's words, on one line, never the quote.
        E::FileParse { uri, cause } => (
            String::new(),
            cause
                .to_string()
                .lines()
                .filter(|line| !line.contains('|'))
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(": "),
            uri,
        ),
        other => (String::new(), other.to_string(), None),
    };
    // serde names an unknown key in its message; the key itself locates the file exactly.
    let key = match problem
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        Some(field) if key.is_empty() => field.to_owned(),
        Some(field) => format!("{key}.{field}"),
        None => key,
    };
    let key = display_key(&key);
    let mut error = ConfigError::new(key.clone(), problem);
    if let Some(file) = origin.or_else(|| origin_of(layers, &key)) {
        error = error.in_file(file);
    }
    error
}

/// A lowercased key with the module table's keys spelled as admins know them.
fn display_key(key: &str) -> String {
    key.split('.')
        .map(|part| {
            MODULE_KEYS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(part))
                .map_or(part, |k| k)
        })
        .collect::<Vec<_>>()
        .join(".")
}
