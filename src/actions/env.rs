//! The environment variables a command gets: `VOXD_INTENT`, `VOXD_SLOT_<NAME>` for every
//! slot of the match, and `VOXD_TEXT` when the text heard is given.

use std::collections::BTreeMap;

use crate::grammar::SlotValue;

/// Every variable voxd sets starts with this; inherited ones with it are removed so that a
/// command never sees a stale slot (for example when voxd itself was started by an action).
pub const PREFIX: &str = "VOXD_";

/// The variable holding slot `name`: upper case, every character other than an ASCII
/// letter or digit replaced by `_` (`living-room.temp` is `VOXD_SLOT_LIVING_ROOM_TEMP`),
/// so the name is usable in any shell or language.
pub fn slot_variable(name: &str) -> String {
    let suffix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}SLOT_{suffix}")
}

/// The variables for one request, in a fixed order.
pub fn action_variables(
    intent: &str,
    slots: &BTreeMap<String, SlotValue>,
    text: Option<&str>,
) -> Vec<(String, String)> {
    let mut variables = vec![(format!("{PREFIX}INTENT"), intent.to_string())];
    variables.extend(
        slots
            .iter()
            .map(|(name, value)| (slot_variable(name), value.to_string())),
    );
    if let Some(text) = text {
        variables.push((format!("{PREFIX}TEXT"), text.to_string()));
    }
    variables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_become_portable_variable_names() {
        assert_eq!(slot_variable("room"), "VOXD_SLOT_ROOM");
        assert_eq!(
            slot_variable("living-room.temp"),
            "VOXD_SLOT_LIVING_ROOM_TEMP"
        );
        assert_eq!(slot_variable("pièce2"), "VOXD_SLOT_PI_CE2");
    }

    #[test]
    fn variables_carry_intent_slots_and_text() {
        let slots = BTreeMap::from([
            ("room".to_string(), SlotValue::Text("a b".into())),
            ("level".to_string(), SlotValue::Integer(3)),
        ]);
        let variables = action_variables("LightOn", &slots, Some("turn on a b"));
        assert_eq!(
            variables,
            [
                ("VOXD_INTENT".to_string(), "LightOn".to_string()),
                ("VOXD_SLOT_LEVEL".to_string(), "3".to_string()),
                ("VOXD_SLOT_ROOM".to_string(), "a b".to_string()),
                ("VOXD_TEXT".to_string(), "turn on a b".to_string()),
            ]
        );
        assert_eq!(action_variables("X", &BTreeMap::new(), None).len(), 1);
    }
}
