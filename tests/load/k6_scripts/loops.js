import http from 'k6/http';

const PAGES = ['/a', '/b'];

export const options = { vus: 1, iterations: 10 };

function fetchPage(page) {
  http.get(`http://localhost${page}`);
}

export default function () {
  for (let i = 1; i <= 3; i++) {
    http.get(`http://localhost/records/${i}`);
  }
  for (const p of PAGES) {
    fetchPage(p);
  }
  if (__ENV.EXTRA) {
    http.get('http://localhost/extra');
  }
}
