import http from 'k6/http';

export function setup() {
  return http.post('http://localhost/token').json('token');
}

export default function (data) {
  http.get('http://localhost/me');
}
