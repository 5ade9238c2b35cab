//! Seeds give the same z as numpy's legacy `RandomState(seed).randn(1, n)`.
//! Expected values were computed once with numpy 2.4 and are committed here.

use editone::seed::z_from_seed;

fn assert_same(seed: u64, expected: &[f64]) {
    let z = z_from_seed(seed, expected.len()).unwrap();
    assert_eq!(z, expected, "seed {seed}");
}

#[test]
fn seeds_match_numpy_legacy_randn() {
    assert_same(0, &[1.764052345967664, 0.4001572083672233, 0.9787379841057392, 2.240893199201458]);
    assert_same(1, &[1.6243453636632417, -0.6117564136500754, -0.5281717522634557]);
    assert_same(
        42,
        &[0.4967141530112327, -0.13826430117118466, 0.6476885381006925, 1.5230298564080254, -0.23415337472333597],
    );
    assert_same(
        123,
        &[
            -1.0856306033005612,
            0.9973454465835858,
            0.28297849805199204,
            -1.506294713918092,
            -0.5786002519685364,
            1.651436537097151,
            -2.426679243393074,
        ],
    );
    assert_same(4294967295, &[0.6484086742306527, 0.6693235306338161, -1.0805437227474493]);
}

#[test]
fn long_draws_cross_the_state_refill() {
    // 512 normals use more than 624 32-bit words, so the MT state is regenerated.
    let z = z_from_seed(7, 512).unwrap();
    assert_eq!(&z[509..], &[0.1766893485364619, -0.8763224285128013, -1.779308714189156]);
    let sum: f64 = z.iter().sum();
    assert!((sum - -35.194870862615026).abs() < 1e-9, "sum {sum}");
}

#[test]
fn seeds_beyond_32_bits_are_refused() {
    let err = z_from_seed(1 << 32, 4).unwrap_err();
    assert_eq!(err.kind, editone::ErrorKind::InvalidArgument);
    assert!(err.message.contains("4294967296"), "{}", err.message);
}
