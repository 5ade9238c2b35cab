//! Model files of every supported kind, read into one shape: a config (the
//! native JSON) and tensors named as the NVlabs `G_ema.state_dict()`.
//!
//! - native: a `.safetensors` file with a `config` metadata entry, or a
//!   folder with `config.json` and `weights.safetensors`;
//! - NVlabs StyleGAN2(-ADA) network pickles (`.pkl`): `G_ema` is read from
//!   the pickled module tree without running anything (see [`super::pickle`]);
//! - rosinality/stylegan2-pytorch checkpoints (`.pt`, torch.save zip):
//!   `g_ema` renamed per docs/stylegan2.md section 4.2, computed with
//!   rosinality's numerics.
//!
//! The kind is told by the file's first bytes, not its name.

use super::pickle::{storage_pid, AllowList, Elem, Id, Pickle, TensorRef, TorchZip, Value};
use super::weights::{fnv1a64, fnv1a64_continue, WeightFile, Weights};
use crate::files::{self, Existing};
use crate::error::{Error, ErrorKind, Result};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Metadata key under which a converted file keeps its source's
/// fingerprint, so presets made on the original still apply.
const SOURCE_FINGERPRINT: &str = "source_fingerprint";

/// Metadata key of a native file's content hash: FNV-1a 64 over its
/// config and its tensor data, written by [`ModelFile::write_native`] and
/// checked at every load, so that a damaged file (a flipped bit in the
/// weights) is refused instead of rendering wrong faces. FNV-1a changes
/// with every single changed byte, and costs little next to the load.
const CONTENT_HASH: &str = "content_hash";

/// Largest model file read: the largest official StyleGAN2 pickles are
/// under 400 MB.
const MAX_MODEL_BYTES: u64 = 4 << 30;
/// Largest config.json of a model folder.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How deep a module tree may nest (real generators nest 4 levels).
const MAX_MODULE_DEPTH: usize = 32;

/// A model file read into its config and tensors.
pub struct ModelFile {
    /// The architecture config, as the native format stores it.
    pub config: Json,
    /// "model file 'x.pkl'", for messages.
    pub label: String,
    /// Identifies the weights for presets.
    pub fingerprint: String,
    content: Content,
}

enum Content {
    Safetensors(WeightFile),
    Tensors(BTreeMap<String, Tensor>),
}

impl ModelFile {
    /// Reads any supported model file or folder.
    pub fn open(path: &Path) -> Result<ModelFile> {
        if !path.exists() {
            return Err(Error::new(ErrorKind::Io, format!("model path '{}' does not exist", path.display())));
        }
        if path.is_dir() {
            return ModelFile::open_folder(path);
        }
        let bytes = files::read_capped(path, "model file", MAX_MODEL_BYTES)?;
        ModelFile::from_bytes(path, bytes)
    }

    /// Reads a model file's content; `path` names it in messages.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<ModelFile> {
        let label = format!("model file '{}'", path.display());
        let fingerprint = format!("fnv1a64:{:016x}", fnv1a64(&bytes));
        // Safetensors first: its header length is arbitrary, so its first
        // byte may be 0x80, a pickle's first byte.
        if looks_like_safetensors(&bytes) {
            return ModelFile::open_safetensors(WeightFile::from_bytes(path, bytes));
        }
        let read = if bytes.starts_with(b"PK\x03\x04") {
            read_rosinality(&bytes)
        } else if bytes.first() == Some(&0x80) {
            read_nvlabs(&bytes)
        } else if bytes.get(8) == Some(&b'{') {
            // A damaged safetensors file: its reader names what is wrong.
            return ModelFile::open_safetensors(WeightFile::from_bytes(path, bytes));
        } else {
            Err(Error::format(
                "not a model file: expected safetensors, an NVlabs network pickle (.pkl) or a rosinality checkpoint (.pt)",
            ))
        };
        let (config, tensors) = read.map_err(|e| e.context(label.clone()))?;
        Ok(ModelFile { config, label, fingerprint, content: Content::Tensors(tensors) })
    }

    fn open_folder(path: &Path) -> Result<ModelFile> {
        let config_path = path.join("config.json");
        let weights_path = path.join("weights.safetensors");
        if !config_path.is_file() {
            return Err(Error::format(format!("model folder '{}' has no config.json", path.display())));
        }
        if !weights_path.is_file() {
            return Err(Error::format(format!("model folder '{}' has no weights.safetensors", path.display())));
        }
        let bytes = files::read_capped(&config_path, "model config", MAX_CONFIG_BYTES)?;
        let label = format!("model config '{}'", config_path.display());
        let text = String::from_utf8(bytes).map_err(|_| Error::format(format!("{label} is not UTF-8 text")))?;
        let config = parse_config(&text).map_err(|e| e.context(label.clone()))?;
        let file = WeightFile::read(&weights_path)?;
        Ok(ModelFile { config, label, fingerprint: file.fingerprint(), content: Content::Safetensors(file) })
    }

    fn open_safetensors(file: WeightFile) -> Result<ModelFile> {
        let label = format!("model file '{}'", file.path().display());
        let mut meta = file.metadata()?;
        if meta.contains_key(crate::tune::TUNED_METADATA) {
            return Err(Error::format(format!(
                "{label} is a tuned model: load it over the model it was tuned from (eo_model_load_tuned; in the CLI, a folder that `invert --tune` wrote)"
            )));
        }
        let text = meta
            .remove("config")
            .ok_or_else(|| Error::format(format!("{label} has no 'config' entry in its safetensors metadata")))?;
        if let Some(stored) = meta.remove(CONTENT_HASH) {
            let actual = content_hash(&text, file.data()?);
            if stored != actual {
                return Err(Error::format(format!(
                    "{label} is damaged: its content hash is {actual}, but the file was written with {stored}"
                )));
            }
        }
        let config = parse_config(&text).map_err(|e| e.context(label.clone()))?;
        let fingerprint = meta.remove(SOURCE_FINGERPRINT).unwrap_or_else(|| file.fingerprint());
        Ok(ModelFile { config, label, fingerprint, content: Content::Safetensors(file) })
    }

    /// The architecture named by the config ("stylegan2" when absent).
    pub fn architecture(&self) -> &str {
        self.config.get("model").and_then(|m| m.as_str()).unwrap_or("stylegan2")
    }

    /// The tensors, to be taken by a generator's loader.
    pub fn weights(&self, device: Device) -> Result<Weights<'_>> {
        match &self.content {
            Content::Safetensors(file) => file.parse(device),
            Content::Tensors(tensors) => {
                let copies = tensors.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
                Ok(Weights::from_tensors(self.label.clone(), copies, device))
            }
        }
    }

    /// Writes the native format, atomically: one safetensors file, float32,
    /// the config, the source's fingerprint and the content hash in its
    /// metadata.
    pub fn write_native(&self, out: &Path, existing: Existing) -> Result<()> {
        let mut tensors: Vec<(String, NativeTensor)> = Vec::new();
        let mut weights = self.weights(Device::Cpu)?;
        for (name, shape) in weights.names_and_shapes() {
            let t = weights.take(&name, &shape)?;
            tensors.push((name, NativeTensor::of(&t)?));
        }
        let mut metadata = HashMap::from([
            ("config".to_string(), self.config.to_string()),
            (SOURCE_FINGERPRINT.to_string(), self.fingerprint.clone()),
        ]);
        // The hash covers the data section as laid out in the file, which
        // safetensors orders itself: lay it out once, hash, lay out again
        // with the hash (the data section does not move).
        let draft = WeightFile::from_bytes(out, layout(&tensors, &metadata, out)?);
        metadata.insert(CONTENT_HASH.to_string(), content_hash(&metadata["config"], draft.data()?));
        drop(draft);
        let bytes = layout(&tensors, &metadata, out)?;
        files::write_atomic(out, existing, |w| {
            w.write_all(&bytes).map_err(|e| Error::new(ErrorKind::Io, format!("cannot write '{}': {e}", out.display())))
        })
    }
}

/// [`CONTENT_HASH`]'s value for a config and the tensor data section.
fn content_hash(config: &str, data: &[u8]) -> String {
    format!("fnv1a64:{:016x}", fnv1a64_continue(fnv1a64(config.as_bytes()), data))
}

/// A tensor as a native file stores it: float32, little-endian.
pub(crate) struct NativeTensor {
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl NativeTensor {
    /// A copy of `t` (any floating kind, any device) as float32 bytes.
    pub(crate) fn of(t: &Tensor) -> Result<NativeTensor> {
        let t = t.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?.f_contiguous()?;
        let values = Vec::<f32>::try_from(t.flatten(0, -1))?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        Ok(NativeTensor { shape, data: values.iter().flat_map(|v| v.to_le_bytes()).collect() })
    }
}

/// The bytes of a safetensors file holding `tensors` and `metadata`
/// (`out` names it in messages). Safetensors orders the data section
/// itself, so the same tensors always give the same data section.
pub(crate) fn layout(tensors: &[(String, NativeTensor)], metadata: &HashMap<String, String>, out: &Path) -> Result<Vec<u8>> {
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), &Some(metadata.clone()))
        .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot lay out '{}': {e:?}", out.display())))
}

impl safetensors::View for &NativeTensor {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A safetensors file: an 8-byte little-endian header length, then a JSON
/// object of that many bytes (padded with spaces) inside the file.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))) else { return false };
    let end = 8u64.saturating_add(len);
    end <= bytes.len() as u64
        && bytes.get(8) == Some(&b'{')
        && bytes[8..end as usize].trim_ascii_end().last() == Some(&b'}')
}

/// Parses a config JSON object.
pub fn parse_config(text: &str) -> Result<Json> {
    let value: Json = serde_json::from_str(text).map_err(|e| Error::format(format!("config is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::format("config must be a JSON object"));
    }
    Ok(value)
}

/// A tensor of a pickle as a CPU tensor of its own kind.
fn materialise(p: &Pickle<'_>, t: &TensorRef) -> Result<Tensor> {
    let Value::Storage { elem, data } = p.get(t.storage) else {
        return Err(Error::format("tensor without storage"));
    };
    let kind = match elem {
        Elem::F32 => Kind::Float,
        Elem::F16 => Kind::Half,
        Elem::BF16 => Kind::BFloat16,
        Elem::F64 => Kind::Double,
        Elem::I64 => Kind::Int64,
        Elem::I32 => Kind::Int,
        Elem::I16 => Kind::Int16,
        Elem::I8 => Kind::Int8,
        Elem::U8 => Kind::Uint8,
        Elem::Bool => Kind::Bool,
    };
    let size: Vec<i64> = t.size.iter().map(|&d| d as i64).collect();
    if size.contains(&0) {
        return Ok(Tensor::f_zeros(&size, (kind, Device::Cpu))?);
    }
    // Only the span the view addresses is copied (checked by the reader).
    let span = 1 + t.size.iter().zip(&t.stride).map(|(&d, &s)| (d - 1) * s).sum::<usize>();
    let bytes = &data[t.offset * elem.size()..(t.offset + span) * elem.size()];
    let flat = Tensor::f_from_data_size(bytes, &[span as i64], kind)?;
    let stride: Vec<i64> = t.stride.iter().map(|&s| s as i64).collect();
    Ok(flat.f_as_strided(&size, &stride, 0)?.f_contiguous()?)
}

fn as_tensor<'p>(p: &'p Pickle<'_>, id: Id) -> Option<&'p TensorRef> {
    match p.get(id) {
        Value::Tensor(t) => Some(t),
        _ => None,
    }
}

fn keys_of(p: &Pickle<'_>, dict: Id) -> String {
    let keys: Vec<&str> = p.dict_items(dict).unwrap_or(&[]).iter().filter_map(|&(k, _)| p.as_str(k)).take(12).collect();
    keys.join(", ")
}

// ---------------------------------------------------------------- NVlabs

/// One persistent module: its class and its `__dict__`.
struct Module {
    class_name: String,
    state: Id,
}

fn module(p: &Pickle<'_>, id: Id, what: &str) -> Result<Module> {
    let Value::Persistent(meta) = p.get(id) else {
        return Err(Error::format(format!("{what} is a {}, not a persistent network module", p.kind_name(id))));
    };
    let class_name = p.dict_get(*meta, "class_name").and_then(|c| p.as_str(c)).unwrap_or("").to_string();
    let state = p
        .dict_get(*meta, "state")
        .filter(|&s| p.dict_items(s).is_some())
        .ok_or_else(|| Error::format(format!("{what} ({class_name}) has no state dict")))?;
    Ok(Module { class_name, state })
}

fn child(p: &Pickle<'_>, parent: &Module, name: &str, path: &str) -> Result<Module> {
    let id = p
        .dict_get(parent.state, "_modules")
        .and_then(|m| p.dict_get(m, name))
        .ok_or_else(|| Error::format(format!("network module {path} has no submodule '{name}'")))?;
    module(p, id, &format!("{path}.{name}"))
}

fn attr(p: &Pickle<'_>, m: &Module, name: &str) -> Option<Id> {
    p.dict_get(m.state, name)
}

fn int_attr(p: &Pickle<'_>, m: &Module, name: &str, path: &str) -> Result<usize> {
    attr(p, m, name)
        .and_then(|v| p.as_int(v))
        .filter(|&v| (0..=(1 << 20)).contains(&v))
        .map(|v| v as usize)
        .ok_or_else(|| Error::format(format!("network module {path} has no valid integer '{name}'")))
}

/// Collects `_parameters` and `_buffers` of a module tree under
/// state_dict names, as `G_ema.state_dict()` would list them.
fn collect_tensors(p: &Pickle<'_>, m: &Module, prefix: &str, depth: usize, out: &mut BTreeMap<String, Tensor>) -> Result<()> {
    if depth > MAX_MODULE_DEPTH {
        return Err(Error::format("network modules nest too deeply"));
    }
    let skipped: Vec<&str> = attr(p, m, "_non_persistent_buffers_set")
        .and_then(|s| p.as_seq(s))
        .unwrap_or(&[])
        .iter()
        .filter_map(|&k| p.as_str(k))
        .collect();
    for group in ["_parameters", "_buffers"] {
        let Some(items) = attr(p, m, group).and_then(|d| p.dict_items(d)) else { continue };
        for &(k, v) in items {
            let name = p.as_str(k).ok_or_else(|| Error::format(format!("{prefix}{group} has a non-string key")))?;
            if skipped.contains(&name) || matches!(p.get(v), Value::None) {
                continue;
            }
            let t = as_tensor(p, v)
                .ok_or_else(|| Error::format(format!("{prefix}{name} is a {}, not a tensor", p.kind_name(v))))?;
            out.insert(format!("{prefix}{name}"), materialise(p, t)?);
        }
    }
    let Some(children) = attr(p, m, "_modules").and_then(|d| p.dict_items(d)) else { return Ok(()) };
    for &(k, v) in children {
        let name = p.as_str(k).ok_or_else(|| Error::format(format!("{prefix}_modules has a non-string key")))?;
        if matches!(p.get(v), Value::None) {
            continue;
        }
        let sub = module(p, v, &format!("{prefix}{name}"))?;
        collect_tensors(p, &sub, &format!("{prefix}{name}."), depth + 1, out)?;
    }
    Ok(())
}

/// An NVlabs network pickle: `G_ema`'s config and state_dict.
pub fn read_nvlabs(bytes: &[u8]) -> Result<(Json, BTreeMap<String, Tensor>)> {
    let (p, _) = Pickle::parse(bytes, AllowList::Checkpoint, None)?;
    if p.dict_items(p.root).is_none() {
        return Err(Error::format(format!("the pickle holds a {}, not a dict of networks", p.kind_name(p.root))));
    }
    let g_id = p.dict_get(p.root, "G_ema").ok_or_else(|| {
        Error::format(format!("the pickle has no 'G_ema' network (it has: {})", keys_of(&p, p.root)))
    })?;
    let g = module(&p, g_id, "G_ema")?;
    if g.class_name != "Generator" {
        return Err(Error::format(format!("G_ema is a '{}', expected 'Generator'", g.class_name)));
    }
    let config = nvlabs_config(&p, &g)?;
    let mut tensors = BTreeMap::new();
    collect_tensors(&p, &g, "", 0, &mut tensors)?;
    Ok((config, tensors))
}

/// The Generator's constructor arguments, read from the module attributes
/// the official forward itself uses (and `_init_kwargs` for the channel
/// budget, which no module keeps).
fn nvlabs_config(p: &Pickle<'_>, g: &Module) -> Result<Json> {
    let synthesis = child(p, g, "synthesis", "G_ema")?;
    let mapping = child(p, g, "mapping", "G_ema")?;
    if attr(p, &synthesis, "_modules").and_then(|m| p.dict_get(m, "input")).is_some() {
        return Err(Error::format("this is a StyleGAN3 generator, which editone does not support (StyleGAN2 only)"));
    }
    let resolution = int_attr(p, g, "img_resolution", "G_ema")?;
    let resolutions: Vec<usize> = (2..=resolution.max(4).trailing_zeros()).map(|l| 1 << l).collect();
    let b4 = child(p, &synthesis, "b4", "G_ema.synthesis")?;
    let conv1 = child(p, &b4, "conv1", "G_ema.synthesis.b4")?;
    let architecture = attr(p, &b4, "architecture").and_then(|a| p.as_str(a)).unwrap_or("skip");
    let conv_clamp = match attr(p, &conv1, "conv_clamp").map(|c| p.get(c)) {
        None | Some(Value::None) => Json::Null,
        Some(_) => json!(attr(p, &conv1, "conv_clamp").and_then(|c| p.as_f64(c))),
    };
    let mut fp16_blocks = 0;
    for res in &resolutions {
        let block = child(p, &synthesis, &format!("b{res}"), "G_ema.synthesis")?;
        if attr(p, &block, "use_fp16").and_then(|v| p.as_int(v)) == Some(1) {
            fp16_blocks += 1;
        }
    }
    let fc0 = child(p, &mapping, "fc0", "G_ema.mapping")?;
    let lr_multiplier = attr(p, &fc0, "bias_gain").and_then(|v| p.as_f64(v)).unwrap_or(0.01);
    let init = attr(p, g, "_init_kwargs").and_then(|k| p.dict_get(k, "synthesis_kwargs"));
    let init_int = |key: &str, default: usize| {
        init.and_then(|s| p.dict_get(s, key)).and_then(|v| p.as_int(v)).map(|v| v as usize).unwrap_or(default)
    };
    let mut mapping_kwargs = Map::new();
    mapping_kwargs.insert("num_layers".into(), json!(int_attr(p, &mapping, "num_layers", "G_ema.mapping")?));
    mapping_kwargs.insert("lr_multiplier".into(), json!(lr_multiplier));
    if let Some(v) = attr(p, &fc0, "out_features").and_then(|v| p.as_int(v)) {
        mapping_kwargs.insert("layer_features".into(), json!(v));
    }
    let c_dim = int_attr(p, g, "c_dim", "G_ema")?;
    if c_dim > 0 {
        let embed = child(p, &mapping, "embed", "G_ema.mapping")?;
        mapping_kwargs.insert("embed_features".into(), json!(int_attr(p, &embed, "out_features", "G_ema.mapping.embed")?));
    }
    Ok(json!({
        "model": "stylegan2",
        "z_dim": int_attr(p, g, "z_dim", "G_ema")?,
        "c_dim": c_dim,
        "w_dim": int_attr(p, g, "w_dim", "G_ema")?,
        "img_resolution": resolution,
        "img_channels": int_attr(p, g, "img_channels", "G_ema")?,
        "mapping_kwargs": mapping_kwargs,
        "synthesis_kwargs": {
            "channel_base": init_int("channel_base", 32768),
            "channel_max": init_int("channel_max", 512),
            "num_fp16_res": fp16_blocks,
            "conv_clamp": conv_clamp,
            "architecture": architecture,
        },
    }))
}

// ---------------------------------------------------------------- rosinality

/// A rosinality checkpoint: `g_ema` renamed to the NVlabs layout, plus
/// `latent_avg` as `mapping.w_avg` when the file has it.
pub fn read_rosinality(bytes: &[u8]) -> Result<(Json, BTreeMap<String, Tensor>)> {
    let archive = TorchZip::open(bytes)?;
    if archive.big_endian() {
        return Err(Error::format("big-endian torch archives are not supported"));
    }
    let mut load = |p: &Pickle<'_>, pid: Id| {
        let (elem, key, numel) = storage_pid(p, pid)?;
        Ok(Value::Storage { elem, data: std::borrow::Cow::Borrowed(archive.storage(&key, elem, numel)?) })
    };
    let (p, _) = Pickle::parse(archive.entry("data.pkl")?, AllowList::Checkpoint, Some(&mut load))?;
    if p.dict_items(p.root).is_none() {
        return Err(Error::format(format!("the checkpoint holds a {}, not a dict", p.kind_name(p.root))));
    }
    let g = p.dict_get(p.root, "g_ema").ok_or_else(|| {
        Error::format(format!("the checkpoint has no 'g_ema' state dict (it has: {})", keys_of(&p, p.root)))
    })?;
    let items = p.dict_items(g).ok_or_else(|| Error::format("'g_ema' is not a state dict"))?;
    let mut source = BTreeMap::new();
    for &(k, v) in items {
        let name = p.as_str(k).ok_or_else(|| Error::format("'g_ema' has a non-string key"))?;
        let t = as_tensor(&p, v).ok_or_else(|| Error::format(format!("g_ema.{name} is not a tensor")))?;
        source.insert(name.to_string(), materialise(&p, t)?);
    }
    let latent_avg = match p.dict_get(p.root, "latent_avg").and_then(|v| as_tensor(&p, v)) {
        Some(t) => Some(materialise(&p, t)?),
        None => None,
    };
    rosinality_to_nvlabs(source, latent_avg)
}

/// Renames per docs/stylegan2.md section 4.2 and infers the config from
/// the shapes (rosinality files carry no architecture record).
fn rosinality_to_nvlabs(src: BTreeMap<String, Tensor>, latent_avg: Option<Tensor>) -> Result<(Json, BTreeMap<String, Tensor>)> {
    let n_mlp = (1..=64).take_while(|i| src.contains_key(&format!("style.{i}.weight"))).count();
    let n_rgbs = (0..=10).take_while(|k| src.contains_key(&format!("to_rgbs.{k}.conv.weight"))).count();
    if n_mlp == 0 || !src.contains_key("input.input") {
        return Err(Error::format("'g_ema' is not a rosinality StyleGAN2 generator (no style.1.weight or input.input)"));
    }
    let resolution = 4usize << n_rgbs;
    let mut r = Renamer { src, out: BTreeMap::new() };
    for i in 0..n_mlp {
        r.copy(&format!("style.{}.weight", i + 1), &format!("mapping.fc{i}.weight"))?;
        r.copy(&format!("style.{}.bias", i + 1), &format!("mapping.fc{i}.bias"))?;
    }
    let lead = r.take("input.input")?;
    r.put("synthesis.b4.const", squeeze_lead(lead, "input.input", 1)?);
    r.styled_conv("conv1", "synthesis.b4.conv1", "noises.noise_0")?;
    r.torgb("to_rgb1", "synthesis.b4")?;
    for k in 0..n_rgbs {
        let res = 8 << k;
        r.styled_conv(&format!("convs.{}", 2 * k), &format!("synthesis.b{res}.conv0"), &format!("noises.noise_{}", 2 * k + 1))?;
        r.styled_conv(&format!("convs.{}", 2 * k + 1), &format!("synthesis.b{res}.conv1"), &format!("noises.noise_{}", 2 * k + 2))?;
        r.torgb(&format!("to_rgbs.{k}"), &format!("synthesis.b{res}"))?;
    }
    if let Some(extra) = r.src.keys().next() {
        return Err(Error::format(format!("'g_ema' has an unexpected tensor {extra}")));
    }
    let estimate_w_avg = latent_avg.is_none();
    if let Some(avg) = latent_avg {
        r.put("mapping.w_avg", avg.f_reshape([-1])?);
    }
    let out = r.out;
    let dim = |name: &str, d: usize| out.get(name).map(|t| t.size()[d] as usize).expect("renamed above");
    let w_dim = dim("mapping.fc0.weight", 1);
    let config = json!({
        "model": "stylegan2",
        "numerics": "rosinality",
        "estimate_w_avg": estimate_w_avg,
        "z_dim": w_dim,
        "c_dim": 0,
        "w_dim": w_dim,
        "img_resolution": resolution,
        "img_channels": dim("synthesis.b4.torgb.weight", 0),
        "mapping_kwargs": { "num_layers": n_mlp, "lr_multiplier": 0.01 },
        "synthesis_kwargs": {
            "channel_base": dim(&format!("synthesis.b{resolution}.conv1.weight"), 0) * resolution,
            "channel_max": dim("synthesis.b4.const", 0),
            "num_fp16_res": 0,
            "conv_clamp": null,
            "architecture": "skip",
        },
    });
    Ok((config, out))
}

/// Moves tensors from rosinality names to NVlabs names.
struct Renamer {
    src: BTreeMap<String, Tensor>,
    out: BTreeMap<String, Tensor>,
}

impl Renamer {
    fn take(&mut self, name: &str) -> Result<Tensor> {
        self.src.remove(name).ok_or_else(|| Error::format(format!("'g_ema' has no tensor {name}")))
    }

    fn put(&mut self, name: &str, t: Tensor) {
        self.out.insert(name.to_string(), t);
    }

    fn copy(&mut self, from: &str, to: &str) -> Result<()> {
        let t = self.take(from)?;
        self.put(to, t);
        Ok(())
    }

    /// StyledConv: modulated conv weight [1,O,I,k,k], its style affine,
    /// noise strength [1] and map [1,1,R,R], the activation's bias, and the
    /// blur kernel of upsampling convs (which includes the up^2 gain).
    fn styled_conv(&mut self, src: &str, dst: &str, noise: &str) -> Result<()> {
        let weight = self.take(&format!("{src}.conv.weight"))?;
        self.put(&format!("{dst}.weight"), squeeze_lead(weight, src, 1)?);
        self.copy(&format!("{src}.conv.modulation.weight"), &format!("{dst}.affine.weight"))?;
        self.copy(&format!("{src}.conv.modulation.bias"), &format!("{dst}.affine.bias"))?;
        let strength = self.take(&format!("{src}.noise.weight"))?;
        if strength.numel() != 1 {
            return Err(Error::format(format!("{src}.noise.weight must hold one value")));
        }
        self.put(&format!("{dst}.noise_strength"), strength.f_reshape([] as [i64; 0])?);
        self.copy(&format!("{src}.activate.bias"), &format!("{dst}.bias"))?;
        let map = self.take(noise)?;
        self.put(&format!("{dst}.noise_const"), squeeze_lead(map, noise, 2)?);
        if let Some(kernel) = self.src.remove(&format!("{src}.conv.blur.kernel")) {
            self.put(&format!("{dst}.resample_filter"), kernel / 4.0);
        }
        Ok(())
    }

    /// ToRGB: weight [1,C,I,1,1], style affine, bias [1,C,1,1], and the
    /// skip path's upsampling kernel.
    fn torgb(&mut self, src: &str, block: &str) -> Result<()> {
        let weight = self.take(&format!("{src}.conv.weight"))?;
        self.put(&format!("{block}.torgb.weight"), squeeze_lead(weight, src, 1)?);
        self.copy(&format!("{src}.conv.modulation.weight"), &format!("{block}.torgb.affine.weight"))?;
        self.copy(&format!("{src}.conv.modulation.bias"), &format!("{block}.torgb.affine.bias"))?;
        let bias = self.take(&format!("{src}.bias"))?;
        self.put(&format!("{block}.torgb.bias"), bias.f_reshape([-1])?);
        if let Some(kernel) = self.src.remove(&format!("{src}.upsample.kernel")) {
            self.put(&format!("{block}.resample_filter"), kernel / 4.0);
        }
        Ok(())
    }
}

/// Drops `n` leading unit dimensions.
fn squeeze_lead(t: Tensor, name: &str, n: usize) -> Result<Tensor> {
    let size = t.size();
    if size.len() < n || size[..n].iter().any(|&d| d != 1) {
        return Err(Error::format(format!("{name} has shape {size:?}; expected {n} leading dimension(s) of 1")));
    }
    Ok(t.f_reshape(&size[n..])?)
}
