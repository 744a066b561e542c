//! The command set the daemon runs with: the grammar, its checked actions, the recogniser's
//! options and the `[commands]` and `[actions]` settings, read from the config file, the
//! flags and the grammar files as one unit and replaced as one.
//!
//! [`recognizer_settings`] is the one place where the config and the flags become the
//! recogniser's options: the daemon's start, every reload and `voxd recognize` call it, so
//! a setting that reaches the recogniser at start (`[transcribe] language`, `[llm]
//! answer_unmatched`) reaches it after a reload too.
//!
//! A reload builds and checks the whole new set before it touches the old one, so a typo in
//! a grammar or in the config is an error to log while the commands that worked before go
//! on working. When the files say what they said before, the set is kept as it is and
//! whatever was built from it (the recogniser's remembered grammar states, the action
//! runner) stays valid.

use std::path::{Path, PathBuf};

use crate::actions::{ActionError, ActionSet, ActionsConfig};
use crate::command::RecognizerOptions;
use crate::config::{CommandsConfig, Config, ConfigError};
use crate::grammar::{self, Grammar, GrammarError};
use crate::whisper::transcribe::AudioCtx;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config file: missing, unreadable, or a key, type or value that is wrong (with
    /// its line).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A grammar file: missing, unreadable, or wrong at `path:line:column`.
    #[error(transparent)]
    Grammar(#[from] GrammarError),
    /// A grammar file the config names is missing or unreadable; `origin` is where the
    /// config names it (`FILE: line N: [commands] grammars`).
    #[error("{origin}: {source}")]
    ConfigGrammar {
        origin: String,
        #[source]
        source: GrammarError,
    },
    /// A flag's value is out of range.
    #[error("--{flag}: {problem}")]
    Flag { flag: String, problem: String },
    #[error("{}: [commands] grammars names no grammar files", config.display())]
    NoGrammars { config: PathBuf },
    #[error(
        "no grammar files: name them in [commands] grammars of a config file or on the \
         command line"
    )]
    NothingToLoad,
    #[error("{}: the grammar has no intents", join_paths(files))]
    NoIntents { files: Vec<PathBuf> },
    /// An intent's action does not fit its grammar; `at` is the intent's `file:line` (the
    /// grammar files, should an error name no intent).
    #[error("{at}: {source}")]
    Action {
        at: String,
        #[source]
        source: ActionError,
    },
    /// `[commands] wake_run` or `wake_notify` cannot be used.
    #[error("[commands] wake_run / wake_notify: {source}")]
    WakeAction {
        #[source]
        source: ActionError,
    },
    #[error("{}: {source}", config.display())]
    WorkingDir {
        config: PathBuf,
        #[source]
        source: ActionError,
    },
}

/// What [`CommandSet::reload`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The files read as before: the set was kept as it is.
    Unchanged,
    /// The set was rebuilt from the changed files and replaced the old one.
    Replaced,
}

/// What the command line may say over the config about commands; None (or no files) leaves
/// the config's value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommandFlags {
    /// Grammar files; when there are any, they replace `[commands] grammars`.
    pub grammars: Vec<PathBuf>,
    pub beam: Option<usize>,
    pub max_mismatch: Option<f32>,
    pub max_ratio: Option<f32>,
    pub min_score: Option<f32>,
    pub max_no_speech: Option<f32>,
    pub audio_ctx: Option<AudioCtx>,
}

/// The `[commands]` settings (with the grammar files to load) and the recogniser's options,
/// from the config and the flags: flags over the file, the file over the defaults.
/// `[transcribe] language` is the language commands are spoken in, and `[llm]
/// answer_unmatched` (with `[llm] enabled`) has refused speech transcribed freely.
pub fn recognizer_settings(
    config: &Config,
    flags: &CommandFlags,
) -> Result<(CommandsConfig, RecognizerOptions), LoadError> {
    let mut settings = config.commands.clone();
    if !flags.grammars.is_empty() {
        settings.grammars = flags.grammars.clone();
    }
    let overrides = [
        flags.beam.is_some(),
        flags.max_mismatch.is_some(),
        flags.max_ratio.is_some(),
        flags.min_score.is_some(),
        flags.max_no_speech.is_some(),
    ];
    settings.beam = flags.beam.unwrap_or(settings.beam);
    settings.max_mismatch = flags.max_mismatch.unwrap_or(settings.max_mismatch);
    settings.max_ratio = flags.max_ratio.unwrap_or(settings.max_ratio);
    settings.min_score = flags.min_score.unwrap_or(settings.min_score);
    settings.max_no_speech = flags.max_no_speech.unwrap_or(settings.max_no_speech);
    if overrides.contains(&true) {
        // The file's values were checked when it was read: what fails now is a flag's.
        settings
            .validate()
            .map_err(|(key, problem)| LoadError::Flag {
                flag: key.replace('_', "-"),
                problem,
            })?;
    }
    let mut options = settings.recognizer_options();
    if let Some(language) = &config.transcribe.language {
        options.language = language.clone();
    }
    if let Some(ctx) = flags.audio_ctx {
        options.audio_ctx = ctx;
    }
    options.transcribe_refused = config.llm.enabled && config.llm.answer_unmatched;
    Ok((settings, options))
}

/// A grammar, its checked actions and their settings, loaded together.
#[derive(Clone, Debug)]
pub struct CommandSet {
    config_path: Option<PathBuf>,
    flags: CommandFlags,
    inputs: Inputs,
    grammar: Grammar,
    actions: ActionSet,
}

/// Everything a set is built from, as read. Equal inputs build an equal set, which is how a
/// reload tells that nothing changed.
#[derive(Clone, Debug, PartialEq)]
struct Inputs {
    /// `grammars` holds the files actually loaded.
    settings: CommandsConfig,
    options: RecognizerOptions,
    actions: ActionsConfig,
    grammar_texts: Vec<(PathBuf, String)>,
}

impl CommandSet {
    /// Reads `config_path` (None: the built-in defaults), then the grammar files: the
    /// flags' when there are any, else the config's `[commands] grammars`. Compiles the
    /// grammar and checks every intent's action against it.
    pub fn load(config_path: Option<&Path>, flags: &CommandFlags) -> Result<CommandSet, LoadError> {
        let inputs = read_inputs(config_path, flags)?;
        let (grammar, actions) = build(&inputs)?;
        Ok(CommandSet {
            config_path: config_path.map(Path::to_path_buf),
            flags: flags.clone(),
            inputs,
            grammar,
            actions,
        })
    }

    /// Reads the same files again. The new set replaces this one only when it is complete
    /// and valid; on an error this set is left exactly as it was.
    pub fn reload(&mut self) -> Result<ReloadOutcome, LoadError> {
        let inputs = read_inputs(self.config_path.as_deref(), &self.flags)?;
        if inputs == self.inputs {
            return Ok(ReloadOutcome::Unchanged);
        }
        let (grammar, actions) = build(&inputs)?;
        self.inputs = inputs;
        self.grammar = grammar;
        self.actions = actions;
        Ok(ReloadOutcome::Replaced)
    }

    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    pub fn actions(&self) -> &ActionSet {
        &self.actions
    }

    /// The `[commands]` settings; `grammars` are the files loaded (from the command line or
    /// the config).
    pub fn settings(&self) -> &CommandsConfig {
        &self.inputs.settings
    }

    /// The recogniser's options ([`recognizer_settings`]).
    pub fn recognizer_options(&self) -> &RecognizerOptions {
        &self.inputs.options
    }

    pub fn actions_config(&self) -> &ActionsConfig {
        &self.inputs.actions
    }

    /// The files the set was built from: the config file (when there is one), then the
    /// grammar files. An edit to any of them calls for [`CommandSet::reload`].
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.config_path
            .iter()
            .chain(&self.inputs.settings.grammars)
            .map(PathBuf::as_path)
    }
}

/// Reads the config and the grammar files' texts.
fn read_inputs(config_path: Option<&Path>, flags: &CommandFlags) -> Result<Inputs, LoadError> {
    let config = match config_path {
        Some(path) => {
            let config = Config::load(path)?;
            // Here rather than in `Config::load`: other commands read the same file and do
            // not run actions.
            config
                .actions
                .check_working_dir()
                .map_err(|source| LoadError::WorkingDir {
                    config: path.to_path_buf(),
                    source,
                })?;
            config
        }
        None => Config::default(),
    };
    let (settings, options) = recognizer_settings(&config, flags)?;
    // Where the grammar files were named, for an error about one of them: the config's
    // key, or nowhere to add (the command line, whose own words the user just typed).
    let origin = config
        .origin("commands", "grammars")
        .filter(|_| flags.grammars.is_empty());
    if settings.grammars.is_empty() {
        return Err(match config_path {
            Some(path) => LoadError::NoGrammars {
                config: path.to_path_buf(),
            },
            None => LoadError::NothingToLoad,
        });
    }
    let grammar_texts = grammar::read_files(&settings.grammars).map_err(|source| match origin {
        Some(origin) => LoadError::ConfigGrammar { origin, source },
        None => source.into(),
    })?;
    Ok(Inputs {
        settings,
        options,
        actions: config.actions,
        grammar_texts,
    })
}

/// Compiles the grammar and checks its actions.
fn build(inputs: &Inputs) -> Result<(Grammar, ActionSet), LoadError> {
    let files = &inputs.settings.grammars;
    let settings = &inputs.settings;
    let grammar =
        Grammar::from_texts_with_wake(inputs.grammar_texts.clone(), settings.wake.as_deref())
            .map_err(|e| match e {
                GrammarError::NoIntents => LoadError::NoIntents {
                    files: files.clone(),
                },
                e => e.into(),
            })?;
    let mut actions = ActionSet::from_grammar(&grammar, &inputs.actions).map_err(|source| {
        let intent = source
            .intent()
            .and_then(|name| grammar.intents().iter().find(|i| i.name == name));
        let at = match intent {
            Some(intent) => format!("{}:{}", intent.file.display(), intent.line),
            None => join_paths(files),
        };
        LoadError::Action { at, source }
    })?;
    actions
        .add_wake(
            &grammar,
            &settings.wake_run,
            settings.wake_notify.as_deref(),
            &inputs.actions,
        )
        .map_err(|source| LoadError::WakeAction { source })?;
    Ok((grammar, actions))
}

fn join_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}
