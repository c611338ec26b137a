package openapi

import (
	"strings"

	"github.com/abe-stack/abe/schema"
)

// files adds the file endpoints of a collection with file fields.
func (g *generator) files(paths *object, c *schema.Collection, t string) {
	var fields []string
	for _, f := range c.Fields {
		if f.Type == schema.File {
			fields = append(fields, f.Name)
		}
	}
	if len(fields) == 0 {
		return
	}
	field := pathParam("field", "A file field: "+strings.Join(fields, ", ")+".", obj("type", "string", "enum", stringList(fields)))
	name := pathParam("name", "The file's name, as the field holds it.", obj("type", "string", "pattern", "^[a-z2-7]{26}$"))
	base := "/api/collections/" + c.Name + "/records/{id}/files/{field}"
	params := []any{paramRef("RecordId"), field}
	named := []any{paramRef("RecordId"), field, name}

	paths.set(base, obj(
		"parameters", params,
		"get", downloadOperation("download"+t+"File", c.Name, "the file of a single file field"),
		"post", uploadOperation(t, c.Name),
		"delete", fileDeleteOperation("delete"+t+"File", c.Name, t, "Clears a single file field, or empties a many one."),
	))
	paths.set(base+"/{name}", obj(
		"parameters", named,
		"get", downloadOperation("download"+t+"NamedFile", c.Name, "one file of a file field"),
		"delete", fileDeleteOperation("delete"+t+"NamedFile", c.Name, t, "Removes this file from the field."),
	))
	paths.set(base+"/url", obj("parameters", params, "get", fileURLOperation("sign"+t+"FileURL", c.Name)))
	paths.set(base+"/{name}/url", obj("parameters", named, "get", fileURLOperation("sign"+t+"NamedFileURL", c.Name)))
}

func uploadOperation(t, collection string) *object {
	return operation("upload"+t+"File", collection, "Upload a file").
		set("description", "Streams the part named file into storage. Its type is sniffed from the content (the name and the part's type do not count) and must be one of the field's mime_types; it must fit the field's max_size. The record's update rule and the field's update rule decide, as for a write setting the field; the version grows. A single field's file is replaced, a many field's list gets it appended.").
		set("parameters", []any{paramRef("IfMatch")}).
		set("requestBody", obj("required", true, "content", obj("multipart/form-data", obj("schema", open(obj(
			"file", obj("type", "string", "contentMediaType", "application/octet-stream", "description", "The file; its filename is kept for downloads."),
		), "file"))))).
		set("responses", conflictAfter(responses(obj("201", obj(
			"description", "The record with the file's name in the field.",
			"headers", obj("ETag", headerRef("ETag"), "Location", headerRef("Location")),
			"content", obj("application/json", obj("schema", ref(t+"Record"))),
		)), 400, 401, 403, 404), t).
			set("413", problemResponse("The file is larger than the field's max_size; nothing was stored.", problem())).
			set("415", problemResponse("Not multipart/form-data, or the file's content is of a type the field does not take; nothing was stored.", problem())).
			set("422", responseRef(errorResponseName(422))).
			set("429", responseRef(errorResponseName(429))))
}

func downloadOperation(id, collection, what string) *object {
	return operation(id, collection, "Download "+what).
		set("description", "Checked by the read rule and the field's read rule (404 when they refuse), or by token. Answers with the sniffed Content-Type, Content-Disposition with the uploaded name (inline for media, PDF and plain text, else attachment), the name as ETag, and Range support.").
		set("security", optionalBearer()).
		set("parameters", []any{
			queryParam("token", "A signed token from .../url: no Authorization needed until it expires.", str()),
			queryParam("download", "Present: Content-Disposition attachment, whatever the type.", str()),
			obj("name", "Range", "in", "header", "description", "A byte range, like bytes=0-1023.", "schema", str()),
			paramRef("IfNoneMatch"),
		}).
		set("responses", responses(obj(
			"200", obj("description", "The file.", "content", obj("*/*", obj("schema", obj("type", "string", "contentMediaType", "application/octet-stream")))),
			"206", obj("description", "The range asked for.", "content", obj("*/*", obj("schema", obj("type", "string", "contentMediaType", "application/octet-stream")))),
			"304", emptyResponse("The file still has the ETag of If-None-Match."),
		), 400, 401, 403, 404, 429))
}

func fileDeleteOperation(id, collection, t, description string) *object {
	return operation(id, collection, "Remove a file").
		set("description", description+" The update rules decide; the stored file is removed by the clean-up job.").
		set("parameters", []any{paramRef("IfMatch")}).
		set("responses", conflictAfter(responses(obj("200", written(t)), 400, 401, 403, 404), t, 422, 429))
}

func fileURLOperation(id, collection string) *object {
	return operation(id, collection, "Sign a download URL").
		set("description", "A URL that downloads the file without Authorization until expires_at (storage.url_ttl), for <img src> and links. Checked like a download; it stops working when the file is replaced or removed.").
		set("responses", responses(obj("200", jsonResponse("The signed URL.", closed(obj(
			"url", obj("type", "string", "format", "uri"),
			"expires_at", dateTime(),
		), "url", "expires_at"))), 400, 401, 404, 429))
}
