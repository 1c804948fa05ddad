#version 330 core
// The render texture as the viewer shows it: RGB passes through; a scalar (depth, opacity) is
// normalised by u_range and looked up in a 256-entry colour table (viewer/colormaps.py builds it,
// and PNG export applies the same table on the CPU).
in vec2 v_uv;
out vec4 frag_color;

uniform sampler2D u_source;   // RGB8 render, or R32F scalar
uniform sampler2D u_lut;      // 256 x 1 RGB8 colour table
uniform int u_scalar;         // 0: RGB, 1: scalar through the table
uniform vec2 u_range;         // scalar value mapped to the table's start and end
uniform int u_reverse;        // 1: high values at the table's start (near = warm for depth)

void main() {
    vec4 s = texture(u_source, v_uv);
    if (u_scalar == 1) {
        float u = clamp((s.r - u_range.x) / max(u_range.y - u_range.x, 1e-12), 0.0, 1.0);
        if (u_reverse == 1) u = 1.0 - u;
        frag_color = vec4(texelFetch(u_lut, ivec2(int(round(u * 255.0)), 0), 0).rgb, 1.0);
    } else {
        frag_color = vec4(s.rgb, 1.0);
    }
}
