import http from "k6/http";
import { sleep } from "k6";

export default function () {
  http.get("http://<your_ip>:8008/records");
  sleep(1);
}
