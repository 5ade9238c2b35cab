//! Broken or mismatched model files get clear errors naming the file and
//! the tensor; nothing panics.

mod common;

use editone::{ErrorKind, Model};
use safetensors::tensor::TensorView;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A writable copy of the tiny64 fixture folder.
fn copy_fixture() -> (tempfile::TempDir, PathBuf) {
    let src = common::fixture("tiny64");
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("tiny64");
    fs::create_dir(&dst).unwrap();
    for f in ["config.json", "weights.safetensors"] {
        fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    (tmp, dst)
}

/// Rewrites the weights with `edit` applied to the (name -> tensor) list.
fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<u8>, Vec<usize>)>)) {
    let path = dir.join("weights.safetensors");
    let bytes = fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> =
        st.tensors().into_iter().map(|(n, v)| (n, v.data().to_vec(), v.shape().to_vec())).collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s)| (n.clone(), TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, &None::<HashMap<String, String>>, &path).unwrap();
}

fn load_err(path: &Path) -> editone::Error {
    match Model::load(path, common::placement()) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => {
            eprintln!("{:?}: {}", e.kind, e.message);
            e
        }
    }
}

#[test]
fn truncated_weights_are_a_format_error() {
    let (_tmp, dir) = copy_fixture();
    let path = dir.join("weights.safetensors");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("weights.safetensors"), "{}", e.message);
}

#[test]
fn garbage_header_is_a_format_error() {
    let (_tmp, dir) = copy_fixture();
    fs::write(dir.join("weights.safetensors"), b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").unwrap();
    assert_eq!(load_err(&dir).kind, ErrorKind::Format);
    fs::write(dir.join("weights.safetensors"), b"").unwrap();
    assert_eq!(load_err(&dir).kind, ErrorKind::Format);
}

#[test]
fn wrong_shape_names_the_tensor_and_both_shapes() {
    let (_tmp, dir) = copy_fixture();
    rewrite_weights(&dir, |t| {
        let e = t.iter_mut().find(|(n, _, _)| n == "synthesis.b8.conv0.weight").unwrap();
        e.1.truncate(64 * 32 * 9 * 4);
        e.2 = vec![64, 32, 3, 3];
    });
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("synthesis.b8.conv0.weight"), "{}", e.message);
    assert!(e.message.contains("[64,32,3,3]") && e.message.contains("[64,64,3,3]"), "{}", e.message);
}

#[test]
fn missing_tensor_is_named() {
    let (_tmp, dir) = copy_fixture();
    rewrite_weights(&dir, |t| t.retain(|(n, _, _)| n != "mapping.w_avg"));
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("mapping.w_avg") && e.message.contains("missing"), "{}", e.message);
}

#[test]
fn extra_tensor_is_named() {
    let (_tmp, dir) = copy_fixture();
    rewrite_weights(&dir, |t| t.push(("synthesis.b128.conv1.weight".into(), vec![0; 16], vec![4])));
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("synthesis.b128.conv1.weight"), "{}", e.message);
}

#[test]
fn nan_weights_are_refused() {
    let (_tmp, dir) = copy_fixture();
    rewrite_weights(&dir, |t| {
        let e = t.iter_mut().find(|(n, _, _)| n == "mapping.fc0.bias").unwrap();
        e.1[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let e = load_err(&dir);
    assert!(e.message.contains("mapping.fc0.bias") && e.message.contains("NaN"), "{}", e.message);
}

#[test]
fn config_that_disagrees_with_weights() {
    let (_tmp, dir) = copy_fixture();
    let cfg = fs::read_to_string(dir.join("config.json")).unwrap().replace("\"channel_max\": 64", "\"channel_max\": 32");
    fs::write(dir.join("config.json"), cfg).unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("synthesis.b4.const"), "{}", e.message);

    let cfg = fs::read_to_string(dir.join("config.json")).unwrap().replace("\"num_ws\": 10", "\"num_ws\": 12");
    fs::write(dir.join("config.json"), cfg).unwrap();
    let e = load_err(&dir);
    assert!(e.message.contains("num_ws 12"), "{}", e.message);
}

#[test]
fn unsupported_architecture_and_bad_json() {
    let (_tmp, dir) = copy_fixture();
    let original = fs::read_to_string(dir.join("config.json")).unwrap();
    fs::write(dir.join("config.json"), original.replace("\"skip\"", "\"resnet\"")).unwrap();
    let e = load_err(&dir);
    assert!(e.message.contains("resnet") && e.message.contains("not supported"), "{}", e.message);
    fs::write(dir.join("config.json"), "{\"z_dim\": ").unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("config.json"), "{}", e.message);
    fs::write(dir.join("config.json"), "{\"z_dim\": 64}").unwrap();
    assert_eq!(load_err(&dir).kind, ErrorKind::Format);
}

#[test]
fn missing_paths_and_folders_without_config() {
    let e = load_err(Path::new("/nonexistent/model.safetensors"));
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains("/nonexistent/model.safetensors"), "{}", e.message);
    let tmp = tempfile::tempdir().unwrap();
    let e = load_err(tmp.path());
    assert_eq!(e.kind, ErrorKind::Format);
    assert!(e.message.contains("config.json"), "{}", e.message);
}

#[test]
fn single_file_model_with_config_in_metadata() {
    let src = common::fixture("tiny64");
    let tmp = tempfile::tempdir().unwrap();
    let bytes = fs::read(src.join("weights.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let config = fs::read_to_string(src.join("config.json")).unwrap();
    let meta = HashMap::from([("config".to_string(), config)]);
    let file = tmp.path().join("tiny64.safetensors");
    safetensors::serialize_to_file(st.tensors(), &Some(meta), &file).unwrap();
    let model = Model::load(&file, common::placement()).unwrap();
    assert_eq!(model.info().num_ws, 10);
    assert_eq!(model.info().resolution, 64);

    let plain = tmp.path().join("plain.safetensors");
    fs::copy(src.join("weights.safetensors"), &plain).unwrap();
    let e = load_err(&plain);
    assert!(e.message.contains("metadata"), "{}", e.message);
}

#[test]
fn converted_files_carry_a_content_hash_that_catches_any_flipped_bit() {
    let src = common::fixture("tiny64");
    let tmp = tempfile::tempdir().unwrap();
    let native = tmp.path().join("tiny64.safetensors");
    editone::model::convert(&src, &native, editone::files::Existing::Refuse, None).unwrap();
    Model::load(&native, common::placement()).unwrap();
    let good = fs::read(&native).unwrap();
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    // 25 single-bit flips spread over the tensor data, as the probe made.
    let data_len = good.len() - header_end;
    for k in 0..25 {
        let mut bad = good.clone();
        let at = header_end + (k * 7919 + 13) % data_len;
        bad[at] ^= 1 << (k % 8);
        let flipped = tmp.path().join(format!("flip{k}.safetensors"));
        fs::write(&flipped, &bad).unwrap();
        let e = load_err(&flipped);
        assert_eq!(e.kind, ErrorKind::Format, "flip {k}");
        assert!(e.message.contains("damaged"), "flip {k}: {}", e.message);
    }
}

#[test]
fn devices_and_pipes_are_refused_without_reading_them() {
    let started = std::time::Instant::now();
    let e = load_err(Path::new("/dev/zero"));
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains("not a regular file"), "{}", e.message);
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("model.pkl");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert!(load_err(&fifo).message.contains("not a regular file"));
    assert!(started.elapsed().as_secs() < 5, "refused at once, not after reading");
}
