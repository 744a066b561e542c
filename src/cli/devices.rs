//! `voxd devices`: the audio input devices and the formats they support.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;

use voxd::capture;

#[derive(Args)]
pub struct DevicesArgs {
    /// Print JSON lines instead of a list.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DevicesArgs) -> Result<()> {
    let json = args.json;
    let devices = capture::list_devices().context("cannot list audio devices")?;
    let mut out = std::io::stdout().lock();
    if devices.is_empty() {
        eprintln!("voxd: no audio input devices found");
    }
    for d in &devices {
        if json {
            writeln!(out, "{}", serde_json::to_string(d)?)?;
            continue;
        }
        let default = if d.is_default { " (default)" } else { "" };
        writeln!(out, "{}: {}{default}", d.index, d.name)?;
        if d.id != d.name {
            writeln!(out, "    id: {}", d.id)?;
        }
        if let Some(c) = &d.default_config {
            writeln!(out, "    default: {c}")?;
        }
        for c in &d.configs {
            writeln!(out, "    supports: {c}")?;
        }
    }
    Ok(())
}
