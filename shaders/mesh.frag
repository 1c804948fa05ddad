#version 330 core
// u_mode 0: shaded (a grey-blue material lit by a headlight at the camera, Blinn-Phong);
// u_mode 1: the vertex colours from the radiance field, unlit (what the exported file holds).
in vec3 v_pos_cam;
in vec3 v_normal_cam;
in vec3 v_color;
out vec4 frag_color;

uniform int u_mode;

void main() {
    if (u_mode == 1) {
        frag_color = vec4(v_color, 1.0);
        return;
    }
    vec3 n = normalize(v_normal_cam);
    vec3 view_dir = normalize(-v_pos_cam);
    if (dot(n, view_dir) < 0.0) n = -n;  // back faces (open crops) lit like front faces
    float diff = max(dot(n, view_dir), 0.0);
    float spec = pow(max(dot(n, view_dir), 0.0), 48.0);
    vec3 base = vec3(0.62, 0.68, 0.78);
    frag_color = vec4(base * (0.22 + 0.78 * diff) + 0.25 * spec, 1.0);
}
