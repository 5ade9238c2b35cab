//! MTCNN face detection (Zhang et al. 2016), native on tch.
