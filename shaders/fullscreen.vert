#version 330 core
// A full-screen triangle generated from gl_VertexID (no vertex buffer needed; a bound VAO is).
// v_uv runs 0..1 across the viewport; texture row 0 (the image's top row) sits at v = 0.
out vec2 v_uv;

void main() {
    vec2 pos = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));  // (0,0) (2,0) (0,2)
    v_uv = pos;
    gl_Position = vec4(pos * 2.0 - 1.0, 0.0, 1.0);
}
