//! The actions of a grammar's intents, checked once when the grammar is loaded: every
//! placeholder names a slot of its intent, the program is fixed, limits are sane.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::grammar::{Grammar, Intent, SlotValue};

use super::config::ActionsConfig;
use super::env::slot_variable;
use super::error::{ActionError, ActionField};
use super::placeholder::Template;

/// What one intent does when it is heard.
#[derive(Clone, Debug)]
pub(super) struct IntentAction {
    /// `run`'s argv: the program (no placeholders) and its argument templates; None when
    /// the intent only notifies.
    pub command: Option<Command>,
    pub notify: Option<Template>,
    pub cooldown: Duration,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub(super) struct Command {
    pub program: String,
    pub args: Vec<Template>,
    /// The index in `args` of the first literal `--`: slot values after it may start with
    /// `-`.
    pub end_of_options: Option<usize>,
}

/// The name the wake phrase's action runs under (its `action` events carry it as `intent`).
pub const WAKE_ACTION: &str = "wake";

/// The checked actions of every intent that has a `run` or a `notify`.
#[derive(Clone, Debug, Default)]
pub struct ActionSet {
    actions: HashMap<String, IntentAction>,
}

impl ActionSet {
    /// Checks and prepares the actions of `grammar`'s intents; per-intent `cooldown_ms` and
    /// `timeout_ms` win over `config`'s defaults. Errors name the intent and the placeholder.
    pub fn from_grammar(grammar: &Grammar, config: &ActionsConfig) -> Result<Self, ActionError> {
        let mut actions = HashMap::new();
        for (index, intent) in grammar.intents().iter().enumerate() {
            let mut slot_names: BTreeSet<&str> = grammar.captured_slot_names(index);
            slot_names.extend(intent.fixed_slots.keys().map(String::as_str));
            if let Some(action) = intent_action(intent, &slot_names, config)? {
                actions.insert(intent.name.clone(), action);
            }
        }
        Ok(ActionSet { actions })
    }

    /// Adds what to do when the wake phrase is heard: `run` (argv, no placeholders: the
    /// phrase has no slots) and `notify`, under the name [`WAKE_ACTION`], with `config`'s
    /// default timeout and no cooldown. Nothing to do adds nothing. An intent of that name
    /// is refused rather than shadowed.
    pub fn add_wake(
        &mut self,
        grammar: &Grammar,
        run: &[String],
        notify: Option<&str>,
        config: &ActionsConfig,
    ) -> Result<(), ActionError> {
        if run.is_empty() && notify.is_none() {
            return Ok(());
        }
        if grammar.intents().iter().any(|i| i.name == WAKE_ACTION) {
            return Err(ActionError::WakeNameTaken {
                intent: WAKE_ACTION.to_string(),
            });
        }
        let wake = Intent {
            name: WAKE_ACTION.to_string(),
            file: Default::default(),
            line: 0,
            fixed_slots: BTreeMap::new(),
            run: run.to_vec(),
            notify: notify.map(str::to_string),
            cooldown_ms: Some(0),
            timeout_ms: None,
        };
        if let Some(action) = intent_action(&wake, &BTreeSet::new(), config)? {
            self.actions.insert(wake.name, action);
        }
        Ok(())
    }

    pub(super) fn get(&self, intent: &str) -> Option<&IntentAction> {
        self.actions.get(intent)
    }

    /// Whether `intent` has a `run` or a `notify`.
    pub fn has_action(&self, intent: &str) -> bool {
        self.actions.contains_key(intent)
    }

    /// The `notify` text of `intent` with `slots` filled in: None when it has none, an
    /// error naming the slot that is missing.
    pub fn notify_text(
        &self,
        intent: &str,
        slots: &BTreeMap<String, SlotValue>,
    ) -> Option<Result<String, String>> {
        let template = self.actions.get(intent)?.notify.as_ref()?;
        Some(
            template
                .render(slots)
                .map_err(|missing| missing.to_string()),
        )
    }
}

/// The action of one intent, or None when it has neither `run` nor `notify`.
fn intent_action(
    intent: &Intent,
    slot_names: &BTreeSet<&str>,
    config: &ActionsConfig,
) -> Result<Option<IntentAction>, ActionError> {
    if intent.run.is_empty() && intent.notify.is_none() {
        return Ok(None);
    }
    check_slot_variables(intent, slot_names)?;
    let command = match intent.run.split_first() {
        Some((program, args)) => Some(command(intent, program, args, slot_names)?),
        None => None,
    };
    let notify = match &intent.notify {
        Some(text) => Some(template(intent, ActionField::Notify, text, slot_names)?),
        None => None,
    };
    let timeout_ms = intent.timeout_ms.unwrap_or(config.default_timeout_ms);
    if timeout_ms == 0 {
        return Err(ActionError::ZeroTimeout {
            intent: intent.name.clone(),
        });
    }
    Ok(Some(IntentAction {
        command,
        notify,
        cooldown: Duration::from_millis(intent.cooldown_ms.unwrap_or(config.default_cooldown_ms)),
        timeout: Duration::from_millis(timeout_ms),
    }))
}

fn command(
    intent: &Intent,
    program: &str,
    args: &[String],
    slot_names: &BTreeSet<&str>,
) -> Result<Command, ActionError> {
    let parsed = template(intent, ActionField::Run(0), program, slot_names)?;
    if parsed.slot_names().next().is_some() {
        return Err(ActionError::PlaceholderInProgram {
            intent: intent.name.clone(),
            program: program.to_string(),
        });
    }
    // A template without placeholders renders without slots.
    let program = parsed.render(&BTreeMap::new()).unwrap_or_default();
    if program.is_empty() {
        return Err(ActionError::EmptyProgram {
            intent: intent.name.clone(),
        });
    }
    let args = args
        .iter()
        .enumerate()
        .map(|(i, arg)| template(intent, ActionField::Run(i + 1), arg, slot_names))
        .collect::<Result<Vec<Template>, _>>()?;
    let end_of_options = args.iter().position(|arg| arg.is_literal("--"));
    Ok(Command {
        program,
        args,
        end_of_options,
    })
}

/// Parses one `run` argument or `notify` text and checks its placeholders name slots.
fn template(
    intent: &Intent,
    field: ActionField,
    text: &str,
    slot_names: &BTreeSet<&str>,
) -> Result<Template, ActionError> {
    let parsed = Template::parse(text).map_err(|message| ActionError::Placeholder {
        intent: intent.name.clone(),
        field,
        text: text.to_string(),
        message,
    })?;
    if let Some(unknown) = parsed.slot_names().find(|name| !slot_names.contains(name)) {
        return Err(ActionError::UnknownSlot {
            intent: intent.name.clone(),
            field,
            placeholder: unknown.to_string(),
            known: known_slots(slot_names),
        });
    }
    Ok(parsed)
}

fn known_slots(slot_names: &BTreeSet<&str>) -> String {
    if slot_names.is_empty() {
        "none".to_string()
    } else {
        slot_names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// Two slots whose variable names coincide would hide one value from the command.
fn check_slot_variables(intent: &Intent, slot_names: &BTreeSet<&str>) -> Result<(), ActionError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for &name in slot_names {
        let variable = slot_variable(name);
        if let Some(first) = seen.insert(variable.clone(), name) {
            return Err(ActionError::SlotVariableClash {
                intent: intent.name.clone(),
                first: first.to_string(),
                second: name.to_string(),
                variable,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const LISTS: &str = r#"
[lists.room]
values = ["kitchen", "living room"]
[lists.level]
range = { from = 0, to = 100 }
"#;

    fn build(intent: &str) -> Result<ActionSet, ActionError> {
        let text = format!("[intents.Light]\nsentences = [\"{{room}} to {{level}}\", \"lights\"]\n{intent}\n{LISTS}");
        let grammar = Grammar::from_texts([(PathBuf::from("t.toml"), text)]).unwrap();
        ActionSet::from_grammar(&grammar, &ActionsConfig::default())
    }

    fn build_error(intent: &str) -> String {
        build(intent).unwrap_err().to_string()
    }

    #[test]
    fn placeholders_of_captured_and_fixed_slots_are_accepted() {
        let set = build(
            "run = [\"lightctl\", \"{room}\", \"--level={level}\", \"{domain}\"]\n\
             notify = \"{room}: {level}%\"\nslots = { domain = \"light\" }\ncooldown_ms = 700",
        )
        .unwrap();
        let action = set.get("Light").unwrap();
        let command = action.command.as_ref().unwrap();
        assert_eq!(command.program, "lightctl");
        assert_eq!(command.args.len(), 3);
        assert_eq!(action.cooldown, Duration::from_millis(700));
        assert_eq!(action.timeout, Duration::from_millis(30_000));
    }

    #[test]
    fn an_intent_without_run_or_notify_has_no_action() {
        assert!(build("").unwrap().get("Light").is_none());
        let notify_only = build("notify = \"{room}\"").unwrap();
        assert!(notify_only.get("Light").unwrap().command.is_none());
    }

    #[test]
    fn unknown_placeholders_name_the_intent_and_the_placeholder() {
        let error = build_error("run = [\"lightctl\", \"--room={rooom}\"]");
        assert!(error.contains("intent `Light`"), "{error}");
        assert!(error.contains("run argument 1"), "{error}");
        assert!(error.contains("`{rooom}` names no slot"), "{error}");
        assert!(error.contains("its slots: level, room"), "{error}");
        let error = build_error("notify = \"Lights in {place}\"");
        assert!(error.contains("notify: `{place}`"), "{error}");
    }

    #[test]
    fn the_program_is_fixed_and_not_empty() {
        let error = build_error("run = [\"{room}ctl\", \"on\"]");
        assert!(error.contains("may not contain a placeholder"), "{error}");
        let error = build_error("run = [\"\"]");
        assert!(error.contains("run's program is empty"), "{error}");
    }

    #[test]
    fn brace_errors_name_the_field() {
        let error = build_error("run = [\"jq\", \"{\"]");
        assert!(
            error.contains("run argument 1 `{`: `{` at character 1"),
            "{error}"
        );
        let error = build_error("run = [\"jq\", \"{{.a}}\", \"}\"]");
        assert!(error.contains("run argument 2 `}`"), "{error}");
    }

    #[test]
    fn slots_sharing_a_variable_name_are_refused() {
        let error = build_error("run = [\"x\"]\nslots = { room-name = \"a\", room_name = \"b\" }");
        assert!(error.contains("VOXD_SLOT_ROOM_NAME"), "{error}");
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let error = build_error("run = [\"x\"]\ntimeout_ms = 0");
        assert!(error.contains("timeout_ms must be at least 1"), "{error}");
    }
}
