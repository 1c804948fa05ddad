#version 330 core
// The baked preview (viewer/baked_preview.py): ray-marches a latent's baked colour + density
// (core/render/bake.py) along the render camera's own rays (core/render/rays.py: pixel centres,
// OpenGL camera looking down -z) over [near, far], front to back with alpha = 1 - exp(-sigma dt),
// stopping once the transmittance falls below u_stop, then adds the renderer's far-bound sample
// and the background: image = sum(w rgb) + (1 - opacity) bg, as core's compositing does.
// Empty space is skipped with a coarse grid of distances to the nearest occupied cell.
//
// Texture layout: the bake's arrays are indexed [x, y, z] and uploaded as they are, so the
// texture's s axis is world z, t is y and r is x (hence the .zyx swizzles). Node i of an axis sits
// at texel centre (i + 0.5) / res, so linear filtering interpolates trilinearly between nodes.
// Framebuffer row 0 holds the image's top row (v_uv.y = 0), as in the display pass.
in vec2 v_uv;
out vec4 frag_color;

uniform sampler3D u_field;     // RGBA16F: rgb in [0, 1], a = density (sigma, or its softplus argument)
uniform sampler3D u_occ;       // R8 (nearest): distance to the nearest occupied cell / 255
uniform sampler2D u_lut;       // 256 x 1 colour table for depth / opacity (as display.frag)
uniform int u_softplus;        // 1: sigma = softplus(a), interpolated before the activation

uniform vec3 u_origin;         // camera centre (world)
uniform mat3 u_rot;            // camera-to-world rotation (columns: right, up, backwards)
uniform vec4 u_intr;           // fx, fy, cx, cy (normalised by the image size)
uniform vec2 u_near_far;       // sampled range along the unit ray
uniform vec3 u_lo;             // world position of node (0, 0, 0)
uniform float u_spacing;       // world distance between nodes
uniform float u_res;           // nodes per side
uniform float u_cell;          // occupancy cell size (world)
uniform int u_cells;           // occupancy cells per side
uniform vec3 u_box_lo;         // the occupied cells' bounding box (world): rays miss it -> empty
uniform vec3 u_box_hi;
uniform float u_step;          // marching step (world)
uniform vec2 u_tail;           // transmittances below which the step doubles, quadruples
uniform float u_stop;          // stop once the transmittance falls below this
uniform float u_far_delta;     // the far sample's interval: 1e10 (opaque far plane) or 1e-3
uniform vec3 u_bg;             // background colour in [0, 1]
uniform int u_mode;            // 0 rgb, 1 depth, 2 opacity, 3 normals
uniform vec2 u_range;          // scalar value mapped to the table's start and end
uniform int u_reverse;         // 1: high values at the table's start

const float BIG = 1e30;

vec4 field_at(vec3 tc) {  // rgb and sigma at a texture coordinate
    vec4 v = textureLod(u_field, tc, 0.0);
    if (u_softplus == 1) v.a = v.a > 15.0 ? v.a : log(1.0 + exp(v.a));
    return v;
}

vec3 scalar_color(float s) {
    float u = clamp((s - u_range.x) / max(u_range.y - u_range.x, 1e-12), 0.0, 1.0);
    if (u_reverse == 1) u = 1.0 - u;
    return texelFetch(u_lut, ivec2(int(round(u * 255.0)), 0), 0).rgb;
}

void main() {
    float dx = (v_uv.x - u_intr.z) / u_intr.x;
    float dy = -(v_uv.y - u_intr.w) / u_intr.y;
    vec3 d = u_rot * normalize(vec3(dx, dy, -1.0));
    vec3 o = u_origin;
    float near = u_near_far.x, far = u_near_far.y;

    // texture coordinates along the ray: tc(t) = tc0 + t * tcd
    float inv = 1.0 / (u_spacing * u_res);
    vec3 tc0 = ((o - u_lo) / u_spacing + 0.5).zyx / u_res;
    vec3 tcd = d.zyx * inv;

    // the part of [near, far] inside the occupied cells' bounding box
    vec3 inv_d = vec3(abs(d.x) > 1e-12 ? 1.0 / d.x : BIG, abs(d.y) > 1e-12 ? 1.0 / d.y : BIG,
                      abs(d.z) > 1e-12 ? 1.0 / d.z : BIG);
    vec3 ta = (u_box_lo - o) * inv_d, tb = (u_box_hi - o) * inv_d;
    vec3 tmin = min(ta, tb), tmax = max(ta, tb);
    float t_in = max(max(max(tmin.x, tmin.y), tmin.z), near);
    float t_out = min(min(min(tmax.x, tmax.y), tmax.z), far);

    float T = 1.0;
    vec3 acc = vec3(0.0);
    float acc_t = 0.0;
    bool stopped = false;
    if (t_in < t_out) {
        // cell space: q = (p - lo) / cell; the occupancy texture holds, per cell, the Chebyshev
        // distance in cells to the nearest occupied one (0: occupied), so a ray in an empty cell
        // jumps out of the whole empty cube around it at once. One loop step is one sample or one
        // jump; samples sit at near + (k + 0.5) * step whichever way a ray arrives.
        vec3 q0 = (o - u_lo) / u_cell;
        vec3 dq = d / u_cell;
        vec3 inv_dq = vec3(abs(dq.x) > 0.0 ? 1.0 / dq.x : BIG, abs(dq.y) > 0.0 ? 1.0 / dq.y : BIG,
                           abs(dq.z) > 0.0 ? 1.0 / dq.z : BIG);
        vec3 up = vec3(greaterThan(dq, vec3(0.0)));  // 1 where the ray goes up an axis
        float ts = near + (ceil((t_in - near) / u_step - 0.5) + 0.5) * u_step;
        float dt = u_step;
        for (int guard = 0; guard < 2048 && ts < t_out; ++guard) {
            vec3 c = clamp(floor(q0 + ts * dq), vec3(0.0), vec3(float(u_cells - 1)));
            float dist = floor(texelFetch(u_occ, ivec3(c).zyx, 0).r * 255.0 + 0.5);
            if (dist > 0.5) {  // leave the empty cube c - (dist - 1) .. c + dist
                vec3 face = c + up * dist - (1.0 - up) * (dist - 1.0);
                vec3 tf = abs((face - q0) * inv_dq);
                float t_exit = min(min(tf.x, tf.y), tf.z);
                ts += max(ceil((t_exit - ts) / u_step), 1.0) * u_step;
                continue;
            }
            vec4 s = field_at(tc0 + ts * tcd);
            float alpha = 1.0 - exp(-max(s.a, 0.0) * dt);
            float w = T * alpha;
            acc += w * s.rgb;
            acc_t += w * ts;
            T -= w;
            if (T < u_stop) { stopped = true; break; }
            ts += dt;
            // where little light is left, longer steps (the rest weighs at most T)
            dt = T > u_tail.x ? u_step : (T > u_tail.y ? 2.0 * u_step : 4.0 * u_step);
        }
    }
    // the renderer's last sample, at the far bound: opaque with far_opaque, else an interval of
    // 1e-3 (which adds nothing where the far point's cell is empty)
    vec3 c_far = floor((o + far * d - u_lo) / u_cell);
    bool far_empty = all(greaterThanEqual(c_far, vec3(0.0))) && all(lessThan(c_far, vec3(float(u_cells))))
                     && texelFetch(u_occ, ivec3(c_far).zyx, 0).r > 0.0;
    if (!stopped && (u_far_delta > 1.0 || !far_empty)) {
        vec4 s = field_at(clamp(tc0 + far * tcd, vec3(0.0), vec3(1.0)));
        float w = T * (1.0 - exp(-max(s.a, 0.0) * u_far_delta));
        acc += w * s.rgb;
        acc_t += w * far;
        T -= w;
    }
    float opacity = 1.0 - T;
    float depth = opacity > 1e-6 ? acc_t / opacity : far;

    vec3 col;
    if (u_mode == 1) {
        col = scalar_color(depth);
    } else if (u_mode == 2) {
        col = scalar_color(opacity);
    } else if (u_mode == 3) {
        // camera-frame normal -grad(sigma) at the depth, by central differences of one texel
        vec3 tc = tc0 + depth * tcd;
        float h = 1.0 / u_res;
        // texture axes are (z, y, x): the world gradient reads them backwards
        float gx = field_at(tc + vec3(0.0, 0.0, h)).a - field_at(tc - vec3(0.0, 0.0, h)).a;
        float gy = field_at(tc + vec3(0.0, h, 0.0)).a - field_at(tc - vec3(0.0, h, 0.0)).a;
        float gz = field_at(tc + vec3(h, 0.0, 0.0)).a - field_at(tc - vec3(h, 0.0, 0.0)).a;
        vec3 g = vec3(gx, gy, gz);
        vec3 n = length(g) > 0.0 ? -normalize(g) : vec3(0.0);
        vec3 n_cam = transpose(u_rot) * n;
        col = (n_cam + 1.0) * 0.5 * opacity + u_bg * (1.0 - opacity);
    } else {
        col = acc + (1.0 - opacity) * u_bg;
    }
    frag_color = vec4(clamp(col, 0.0, 1.0), 1.0);
}
