use editone::edit::drag::{drag, DragOptions, Point};
use editone::{render, Model};
fn main() {
    let model = Model::load_default().unwrap();
    let args: Vec<f64> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let seed = args[4] as u64;
    let w = model.latent_from_seed(seed, None, 1.0).unwrap();
    let out = drag(&model, &w, &[Point { x: args[0], y: args[1] }], &[Point { x: args[2], y: args[3] }], &DragOptions::default(), None, None).unwrap();
    println!("{:?} {}", out.points, out.steps);
    for (name, l) in [("before", &w), ("after", &out.latent)] {
        let img = model.render(&[l]).unwrap();
        let im = render::resize(render::to_image(&img.get(0)).unwrap(), 256, 256);
        render::save(&im, std::path::Path::new(&format!("/tmp/faces/drag_{name}.png"))).unwrap();
    }
}
