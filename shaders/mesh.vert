#version 330 core
// Mesh preview in the viewport: world-space vertices through the render camera's view matrix
// (inverse cam2world) and a projection built from the renderer's intrinsics (viewer/meshing.py).
// y is flipped so that framebuffer row 0 holds the image's top row, as in the display pass.
layout(location = 0) in vec3 a_pos;
layout(location = 1) in vec3 a_normal;
layout(location = 2) in vec3 a_color;

uniform mat4 u_view;
uniform mat4 u_proj;

out vec3 v_pos_cam;
out vec3 v_normal_cam;
out vec3 v_color;

void main() {
    vec4 pc = u_view * vec4(a_pos, 1.0);
    v_pos_cam = pc.xyz;
    v_normal_cam = mat3(u_view) * a_normal;
    v_color = a_color;
    vec4 clip = u_proj * pc;
    gl_Position = vec4(clip.x, -clip.y, clip.z, clip.w);
}
