//! Real photos: faces found with their five landmarks ([`mtcnn`]), each
//! aligned to the crop the model was trained on ([`align`]), and the
//! edited faces warped back into the photo through a feathered mask
//! ([`paste`]).

pub mod align;
pub mod mtcnn;
pub mod paste;

/// A face found in a photo, in photo pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    /// left, top, right, bottom of the detector's box.
    pub bbox: [f32; 4],
    /// The detector's probability that the box holds a face, 0..1.
    pub score: f32,
    /// Left eye, right eye, nose tip, left and right mouth corners, as
    /// seen in the picture ("left" is the smaller x), each (x, y).
    pub landmarks: [[f32; 2]; 5],
}
