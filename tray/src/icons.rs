//! The tray icon of each [`TrayState`], drawn in code as RGBA pixels.
//!
//! Drawn rather than shipped as image files so the binary is self-contained (no icon theme or
//! install path to get wrong) and so tests can check that every state looks different. Each state
//! differs in colour *and* in shape, so it also reads for colour-blind users and on monochrome
//! panels: a check mark (ok), a circular arrow (syncing), an exclamation mark (failed), pause
//! bars (polling stopped), and a hollow struck-through ring (no daemon).

use crate::model::TrayState;

/// Width and height in pixels. Panels scale it; 32 stays crisp at the usual 22–24 px.
pub const SIZE: u32 = 32;

type Rgb = [u8; 3];

const GREEN: Rgb = [46, 125, 50];
const BLUE: Rgb = [21, 101, 192];
const RED: Rgb = [198, 40, 40];
const SLATE: Rgb = [96, 125, 139];
const GREY: Rgb = [140, 140, 140];
const WHITE: Rgb = [255, 255, 255];

/// Samples per pixel side: 4×4 supersampling gives smooth edges without a graphics library.
const SUPERSAMPLE: u32 = 4;

/// The icon of `state`: `SIZE × SIZE` pixels, RGBA, rows top to bottom, straight alpha.
pub fn rgba(state: TrayState) -> Vec<u8> {
    let c = SIZE as f32 / 2.0;
    let disc = Shape::Disc { c: (c, c), r: 14.5 };
    let layers: Vec<(Shape, Rgb)> = match state {
        TrayState::Ok => vec![
            (disc, GREEN),
            (
                Shape::Segment {
                    a: (9.0, 16.5),
                    b: (14.0, 21.5),
                    half_width: 2.0,
                },
                WHITE,
            ),
            (
                Shape::Segment {
                    a: (14.0, 21.5),
                    b: (23.0, 11.0),
                    half_width: 2.0,
                },
                WHITE,
            ),
        ],
        TrayState::Syncing => {
            // A circular arrow turning clockwise: an arc with a gap on the right and an
            // arrowhead on its upper end, pointing along the turn into the gap.
            let (r, end_deg) = (8.0f32, 300.0f32);
            let end = end_deg.to_radians();
            let tip_at = (c + r * end.cos(), c + r * end.sin());
            let radial = (end.cos(), end.sin());
            let along = (-end.sin(), end.cos());
            let head = [
                (tip_at.0 + 4.6 * radial.0, tip_at.1 + 4.6 * radial.1),
                (tip_at.0 - 4.6 * radial.0, tip_at.1 - 4.6 * radial.1),
                (tip_at.0 + 5.5 * along.0, tip_at.1 + 5.5 * along.1),
            ];
            vec![
                (disc, BLUE),
                (
                    Shape::Arc {
                        c: (c, c),
                        r,
                        half_width: 1.9,
                        from_deg: 60.0,
                        to_deg: end_deg,
                    },
                    WHITE,
                ),
                (Shape::Triangle(head), WHITE),
            ]
        }
        TrayState::Failed => vec![
            (disc, RED),
            (
                Shape::Segment {
                    a: (c, 8.0),
                    b: (c, 18.0),
                    half_width: 2.2,
                },
                WHITE,
            ),
            (
                Shape::Disc {
                    c: (c, 23.5),
                    r: 2.4,
                },
                WHITE,
            ),
        ],
        TrayState::PollingStopped => vec![
            (disc, SLATE),
            (
                Shape::Segment {
                    a: (12.0, 10.0),
                    b: (12.0, 22.0),
                    half_width: 2.2,
                },
                WHITE,
            ),
            (
                Shape::Segment {
                    a: (20.0, 10.0),
                    b: (20.0, 22.0),
                    half_width: 2.2,
                },
                WHITE,
            ),
        ],
        TrayState::Unreachable => vec![
            (
                Shape::Ring {
                    c: (c, c),
                    outer: 14.5,
                    inner: 11.5,
                },
                GREY,
            ),
            (
                Shape::Segment {
                    a: (8.0, 24.0),
                    b: (24.0, 8.0),
                    half_width: 1.6,
                },
                GREY,
            ),
        ],
    };
    render(&layers)
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Disc {
        c: (f32, f32),
        r: f32,
    },
    Ring {
        c: (f32, f32),
        outer: f32,
        inner: f32,
    },
    /// A stroke with round caps.
    Segment {
        a: (f32, f32),
        b: (f32, f32),
        half_width: f32,
    },
    /// A stroke along a circle, clockwise on screen from `from_deg` to `to_deg` (0° = right,
    /// 90° = down, since y grows downwards).
    Arc {
        c: (f32, f32),
        r: f32,
        half_width: f32,
        from_deg: f32,
        to_deg: f32,
    },
    Triangle([(f32, f32); 3]),
}

impl Shape {
    fn contains(&self, (x, y): (f32, f32)) -> bool {
        match *self {
            Shape::Disc { c, r } => dist(c, (x, y)) <= r,
            Shape::Ring { c, outer, inner } => {
                let d = dist(c, (x, y));
                d <= outer && d >= inner
            }
            Shape::Segment { a, b, half_width } => segment_dist(a, b, (x, y)) <= half_width,
            Shape::Arc {
                c,
                r,
                half_width,
                from_deg,
                to_deg,
            } => {
                let d = dist(c, (x, y));
                let angle = (y - c.1).atan2(x - c.0).to_degrees().rem_euclid(360.0);
                (d - r).abs() <= half_width && angle >= from_deg && angle <= to_deg
            }
            Shape::Triangle([p, q, s]) => {
                let side = |a: (f32, f32), b: (f32, f32)| {
                    (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
                };
                let (d1, d2, d3) = (side(p, q), side(q, s), side(s, p));
                let negative = d1 < 0.0 || d2 < 0.0 || d3 < 0.0;
                let positive = d1 > 0.0 || d2 > 0.0 || d3 > 0.0;
                !(negative && positive)
            }
        }
    }
}

fn dist(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

fn segment_dist(a: (f32, f32), b: (f32, f32), p: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    dist(p, (a.0 + t * dx, a.1 + t * dy))
}

/// Paints the layers in order ("over" compositing) with supersampled coverage.
fn render(layers: &[(Shape, Rgb)]) -> Vec<u8> {
    let mut out = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    let step = 1.0 / SUPERSAMPLE as f32;
    let samples = (SUPERSAMPLE * SUPERSAMPLE) as f32;
    for py in 0..SIZE {
        for px in 0..SIZE {
            // Premultiplied accumulation, converted to straight alpha at the end.
            let (mut r, mut g, mut b, mut a) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for (shape, colour) in layers {
                let mut hits = 0u32;
                for sy in 0..SUPERSAMPLE {
                    for sx in 0..SUPERSAMPLE {
                        let point = (
                            px as f32 + (sx as f32 + 0.5) * step,
                            py as f32 + (sy as f32 + 0.5) * step,
                        );
                        if shape.contains(point) {
                            hits += 1;
                        }
                    }
                }
                let coverage = hits as f32 / samples;
                r = colour[0] as f32 * coverage + r * (1.0 - coverage);
                g = colour[1] as f32 * coverage + g * (1.0 - coverage);
                b = colour[2] as f32 * coverage + b * (1.0 - coverage);
                a = coverage + a * (1.0 - coverage);
            }
            if a > 0.0 {
                out.extend([
                    (r / a).round().clamp(0.0, 255.0) as u8,
                    (g / a).round().clamp(0.0, 255.0) as u8,
                    (b / a).round().clamp(0.0, 255.0) as u8,
                    (a * 255.0).round() as u8,
                ]);
            } else {
                out.extend([0, 0, 0, 0]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(icon: &[u8], x: u32, y: u32) -> [u8; 4] {
        let i = ((y * SIZE + x) * 4) as usize;
        [icon[i], icon[i + 1], icon[i + 2], icon[i + 3]]
    }

    /// Mean colour of the opaque pixels that are not the white glyph.
    fn body_colour(icon: &[u8]) -> [f32; 3] {
        let mut sum = [0.0f32; 3];
        let mut n = 0.0;
        for p in icon.chunks(4) {
            let white = p[0] > 230 && p[1] > 230 && p[2] > 230;
            if p[3] == 255 && !white {
                for c in 0..3 {
                    sum[c] += p[c] as f32;
                }
                n += 1.0;
            }
        }
        assert!(n > 0.0, "no coloured pixels");
        sum.map(|s| s / n)
    }

    #[test]
    fn every_icon_has_the_right_size_and_transparent_corners() {
        for state in TrayState::ALL {
            let icon = rgba(state);
            assert_eq!(icon.len(), (SIZE * SIZE * 4) as usize, "{state:?}");
            for (x, y) in [(0, 0), (SIZE - 1, 0), (0, SIZE - 1), (SIZE - 1, SIZE - 1)] {
                assert_eq!(pixel(&icon, x, y)[3], 0, "{state:?} corner {x},{y}");
            }
        }
    }

    #[test]
    fn every_state_looks_different_from_every_other() {
        for (i, a) in TrayState::ALL.iter().enumerate() {
            for b in &TrayState::ALL[i + 1..] {
                let (ia, ib) = (rgba(*a), rgba(*b));
                let differing = ia
                    .chunks(4)
                    .zip(ib.chunks(4))
                    .filter(|(p, q)| {
                        p.iter()
                            .zip(q.iter())
                            .map(|(x, y)| x.abs_diff(*y) as u32)
                            .sum::<u32>()
                            > 60
                    })
                    .count();
                assert!(
                    differing > 100,
                    "{a:?} and {b:?} differ in only {differing} pixels"
                );
            }
        }
    }

    #[test]
    fn shapes_differ_too_not_only_colours() {
        // Compare the glyph masks (white pixels): they must differ between coloured states.
        let mask = |state| -> Vec<bool> {
            rgba(state)
                .chunks(4)
                .map(|p| p[3] > 200 && p[0] > 230 && p[1] > 230 && p[2] > 230)
                .collect()
        };
        let coloured = [
            TrayState::Ok,
            TrayState::Syncing,
            TrayState::Failed,
            TrayState::PollingStopped,
        ];
        for (i, a) in coloured.iter().enumerate() {
            for b in &coloured[i + 1..] {
                let differing = mask(*a)
                    .iter()
                    .zip(mask(*b).iter())
                    .filter(|(x, y)| x != y)
                    .count();
                assert!(differing > 30, "{a:?} / {b:?} glyphs: {differing}");
            }
        }
    }

    #[test]
    fn colours_mean_what_people_expect() {
        let [r, g, b] = body_colour(&rgba(TrayState::Ok));
        assert!(g > r + 40.0 && g > b + 40.0, "ok is green: {r} {g} {b}");
        let [r, g, b] = body_colour(&rgba(TrayState::Failed));
        assert!(r > g + 100.0 && r > b + 100.0, "failed is red: {r} {g} {b}");
        let [r, g, b] = body_colour(&rgba(TrayState::Syncing));
        assert!(
            b > r + 100.0 && b > g + 40.0,
            "syncing is blue: {r} {g} {b}"
        );
        let [r, g, b] = body_colour(&rgba(TrayState::Unreachable));
        assert!(
            (r - g).abs() < 5.0 && (g - b).abs() < 5.0,
            "no daemon is grey: {r} {g} {b}"
        );
    }

    #[test]
    fn no_daemon_is_hollow() {
        let icon = rgba(TrayState::Unreachable);
        // Inside the ring, off the slash: transparent.
        assert_eq!(pixel(&icon, 11, 11)[3], 0);
        assert_eq!(pixel(&icon, 20, 20)[3], 0);
        // The other states are filled there.
        assert_eq!(pixel(&rgba(TrayState::Ok), 11, 11)[3], 255);
    }
}
